import { isIP } from 'node:net';
import { invalidOption } from '../errors.js';

/**
 * `-b BUCKET[/key/prefix]`: the bucket before the first '/', the rest a key prefix ending in '/' (as the original);
 * the AWS CLI's `s3://BUCKET/prefix` is accepted too.
 */
export function parseBucketArgument(value: string): { bucket: string; keyPrefix: string } {
  const bits = value.replace(/^s3:\/\//i, '').replace(/^\/+/, '').replace(/\/+$/, '').split('/');
  const bucket = bits.shift() ?? '';
  if (bucket === '') throw invalidOption('bucket', value, "no bucket name before the first '/'");
  const rest = bits.join('/');
  return { bucket, keyPrefix: rest === '' ? '' : rest + '/' };
}

/** A bucket name usable as a DNS label under virtual-hosted addressing (and over TLS: no dots). */
export function isDnsSafeBucket(bucket: string): boolean {
  return /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(bucket);
}

/** Path style for names that are not DNS-safe, for IP or localhost endpoints, and when asked. */
export function usePathStyle(bucket: string, endpoint: string | undefined, asked = false): boolean {
  if (asked || !isDnsSafeBucket(bucket)) return true;
  if (!endpoint) return false;
  const host = new URL(endpoint).hostname.replace(/^\[|\]$/g, '');
  return isIP(host) !== 0 || host === 'localhost';
}

/** The region an S3 endpoint host names (s3-REGION.amazonaws.com, s3.REGION.amazonaws.com), as the original guesses it. */
export function regionFromEndpoint(endpoint: string): string | undefined {
  const host = new URL(endpoint).hostname;
  if (host === 's3.amazonaws.com' || host === 's3-external-1.amazonaws.com') return 'us-east-1';
  const labels = host.split('.');
  if (labels.length >= 3 && /amazonaws/.test(host)) {
    if (labels[0].startsWith('s3-')) return labels[0].slice(3);
    if (labels[0] === 's3' && labels[1] !== 'amazonaws') return labels[1].replace(/^dualstack$/, labels[2]);
  }
  return undefined;
}

/** GetBucketLocation's answer as a region: empty/null and `US` are us-east-1, `EU` is eu-west-1. */
export function regionOfLocation(location: string | undefined | null): string {
  if (!location || location === 'US') return 'us-east-1';
  if (location === 'EU') return 'eu-west-1';
  return location;
}

/** How the original names a location in its mismatch message: us-east-1 is "US". */
export function displayLocation(location: string | undefined | null): string {
  return !location || location === 'us-east-1' ? 'US' : location;
}
