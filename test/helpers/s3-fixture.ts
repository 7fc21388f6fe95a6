import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsCommand, S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { reference } from './paths.js';
import { startS3rver, type S3rver } from './s3rver.js';

/** A copy of the original's 3-part reference bundle (manifest + parts) in a fresh temp dir. */
export async function copyMultipartBundle(): Promise<{ dir: string; manifest: string; parts: string[]; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 's3-bundle-'));
  const names = ['multipart.img.manifest.xml', 'multipart.img.part.0', 'multipart.img.part.1', 'multipart.img.part.2'];
  for (const n of names) await cp(reference('multipart', n), join(dir, n));
  return { dir, manifest: join(dir, names[0]), parts: names.slice(1), cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * For the suite it is called in: s3rver started and a copy of the multipart reference bundle made before its tests,
 * both removed after them. Read `server` and `bundle` inside the tests.
 */
export function s3rverWithMultipartBundle(): { readonly server: S3rver; readonly bundle: Awaited<ReturnType<typeof copyMultipartBundle>> } {
  const ctx = {} as { server: S3rver; bundle: Awaited<ReturnType<typeof copyMultipartBundle>> };
  beforeAll(async () => {
    ctx.server = await startS3rver();
    ctx.bundle = await copyMultipartBundle();
  });
  afterAll(async () => {
    await ctx.server?.stop();
    await ctx.bundle?.cleanup();
  });
  return ctx;
}

/** A plain SDK client for checking what the server holds (not the code under test's client). */
export function checkClient(url: string, accessKeyId = 'S3RVER', secretAccessKey = 'S3RVER'): S3Client {
  return new S3Client({
    endpoint: url, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId, secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

export async function objectSha1(client: S3Client, bucket: string, key: string): Promise<string> {
  const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return createHash('sha1').update(await out.Body!.transformToByteArray()).digest('hex');
}

export async function listKeys(client: S3Client, bucket: string, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  let marker: string | undefined;
  for (;;) {
    const out = await client.send(new ListObjectsCommand({ Bucket: bucket, Prefix: prefix, Marker: marker }));
    for (const o of out.Contents ?? []) keys.push(o.Key!);
    if (!out.IsTruncated) return keys;
    marker = out.NextMarker ?? keys[keys.length - 1];
  }
}
