import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { loadSharedConfigFiles } from '@smithy/core/config';
import { ToolError, invalidOption } from '../errors.js';

/**
 * The AWS CLI's shared settings as our commands use them: the profile (--profile, else AWS_PROFILE, else "default"),
 * its settings from ~/.aws/config (AWS_CONFIG_FILE) and ~/.aws/credentials (AWS_SHARED_CREDENTIALS_FILE).
 */
export interface AwsProfile {
  name: string;
  /** --profile or AWS_PROFILE named it (the SDK then takes credentials from it rather than from AWS_ACCESS_KEY_ID). */
  named: 'flag' | 'env' | undefined;
  /** Its keys in the config file ([profile NAME], or [default]). */
  settings: Record<string, string | undefined>;
  /** The config file's other sections, e.g. "services.NAME" → { "s3.endpoint_url": … }. */
  sections: Record<string, Record<string, string | undefined>>;
  configFile: string;
}

function home(env: NodeJS.ProcessEnv): string {
  return env.HOME || env.USERPROFILE || homedir();
}

/** Reads the profile; a --profile that neither file has is an error (the AWS CLI's "could not be found"). */
export async function loadProfile(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<AwsProfile> {
  const name = flag || env.AWS_PROFILE || 'default';
  const configFile = env.AWS_CONFIG_FILE || join(home(env), '.aws', 'config');
  const credentialsFile = env.AWS_SHARED_CREDENTIALS_FILE || join(home(env), '.aws', 'credentials');
  const files = await loadSharedConfigFiles({ configFilepath: configFile, filepath: credentialsFile, ignoreCache: true });
  if (flag && !files.configFile[name] && !files.credentialsFile[name]) {
    throw invalidOption('profile', flag, `no such profile in ${configFile} or ${credentialsFile}`);
  }
  return {
    name,
    named: flag ? 'flag' : env.AWS_PROFILE ? 'env' : undefined,
    settings: files.configFile[name] ?? {},
    sections: files.configFile,
    configFile,
  };
}

/** A setting and where it came from, for --debug. */
export interface Sourced<T> { value: T; source: string }

/**
 * The region, as the AWS CLI finds it: --region, else (ours) the region an AWS endpoint URL names, else AWS_REGION,
 * else AWS_DEFAULT_REGION, else the profile's `region`. Undefined when none says: the caller then asks the bucket, or
 * takes us-east-1.
 */
export function configuredRegion(flag: string | undefined, fromUrl: string | undefined, profile: AwsProfile, env: NodeJS.ProcessEnv = process.env): Sourced<string> | undefined {
  if (flag) return { value: flag, source: '--region' };
  if (fromUrl) return { value: fromUrl, source: 'the endpoint URL' };
  if (env.AWS_REGION) return { value: env.AWS_REGION, source: 'AWS_REGION' };
  if (env.AWS_DEFAULT_REGION) return { value: env.AWS_DEFAULT_REGION, source: 'AWS_DEFAULT_REGION' };
  const r = profile.settings.region;
  if (r) return { value: r, source: `profile ${profile.name} in ${profile.configFile}` };
  return undefined;
}

const truthy = (v: string | undefined) => /^(1|true)$/i.test(v ?? '');

/**
 * An endpoint configured outside the command line, as the SDKs read it: AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL,
 * the profile's `services` section, the profile's `endpoint_url`; none when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is set.
 */
export function configuredEndpoint(service: string, profile: AwsProfile | undefined, env: NodeJS.ProcessEnv = process.env): Sourced<string> | undefined {
  if (truthy(env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS) || truthy(profile?.settings.ignore_configured_endpoint_urls)) return undefined;
  const envName = `AWS_ENDPOINT_URL_${service.toUpperCase().replace(/[ -]/g, '_')}`;
  if (env[envName]) return { value: env[envName]!, source: envName };
  if (env.AWS_ENDPOINT_URL) return { value: env.AWS_ENDPOINT_URL, source: 'AWS_ENDPOINT_URL' };
  if (!profile) return undefined;
  const servicesName = profile.settings.services;
  const fromServices = servicesName ? profile.sections[`services.${servicesName}`]?.[`${service}.endpoint_url`] : undefined;
  if (fromServices) return { value: fromServices, source: `[services ${servicesName}] in ${profile.configFile}` };
  if (profile.settings.endpoint_url) return { value: profile.settings.endpoint_url, source: `profile ${profile.name} in ${profile.configFile}` };
  return undefined;
}

/** The CA bundle to trust instead of Node's: AWS_CA_BUNDLE, else the profile's `ca_bundle` (PEM, one or more certificates). */
export function caBundle(profile: AwsProfile, env: NodeJS.ProcessEnv = process.env): Sourced<Buffer> | undefined {
  const [path, source] = env.AWS_CA_BUNDLE
    ? [env.AWS_CA_BUNDLE, 'AWS_CA_BUNDLE']
    : profile.settings.ca_bundle ? [profile.settings.ca_bundle, `ca_bundle of profile ${profile.name}`] : [undefined, ''];
  if (!path) return undefined;
  try {
    return { value: readFileSync(path), source: `${path} (${source})` };
  } catch (err) {
    throw new ToolError(`cannot read the CA bundle ${path} named by ${source}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}
