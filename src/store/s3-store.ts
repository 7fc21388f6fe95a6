import { CopyObjectCommand, DeleteObjectCommand, GetObjectCommand, ListObjectsCommand, PutObjectCommand, type ObjectCannedACL } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { ToolError } from '../errors.js';
import { MAX_MANIFEST_BYTES } from '../format/manifest.js';
import { isPlainFileName } from '../format/part-name.js';
import { s3Call } from '../s3/call.js';
import type { S3Target } from '../s3/client.js';
import { idleWatchdog } from '../s3/idle-watchdog.js';
import { collectExactly, md5Base64, partLengthError, provisionalName, type AbortReport, type PartStore, type PartSums, type PartWriter, type WriterOptions } from './part-store.js';

import { ACLS, type Acl } from '../s3/defaults.js';

export { ACLS, type Acl };

/** A bundle under an S3 key prefix. Parts are written with the ACL and Content-MD5, retried from memory. */
export class S3Store implements PartStore {
  readonly rereadOnMismatch = true;
  readonly acl: Acl;
  /** Cancels requests in flight and stops retries. */
  readonly signal: AbortSignal | undefined;

  constructor(readonly target: S3Target, o: { acl?: Acl; signal?: AbortSignal } = {}) {
    this.acl = o.acl ?? 'aws-exec-read';
    this.signal = o.signal;
  }

  /** Sends one request under the retry policy, cancelled by the store's signal. */
  call<T>(ctx: Parameters<typeof s3Call>[1], send: (abortSignal: AbortSignal | undefined) => Promise<T>): Promise<T> {
    return s3Call(this.target, ctx, () => send(this.signal), this.signal);
  }

  get location(): string {
    return `s3://${this.target.bucket}/${this.target.keyPrefix}`;
  }

  key(name: string): string {
    if (!isPlainFileName(name)) throw new ToolError(`refusing the object name '${name}': not a plain file name`, { code: 'UNSAFE_NAME' });
    return this.target.keyPrefix + name;
  }

  async readManifest(name: string): Promise<Buffer> {
    const key = this.key(name);
    return this.call({ action: 'GetObject', key }, async (abortSignal) => {
      const out = await this.target.client.send(new GetObjectCommand({ Bucket: this.target.bucket, Key: key }), { abortSignal });
      const body = out.Body as Readable;
      const chunks: Buffer[] = [];
      let n = 0;
      try {
        for await (const c of body.pipe(idleWatchdog(this.target.timeoutMs, key)) as AsyncIterable<Buffer>) {
          n += c.length;
          if (n > MAX_MANIFEST_BYTES) throw new ToolError(`s3://${this.target.bucket}/${key} is over ${MAX_MANIFEST_BYTES} bytes: not a manifest`, { code: 'MANIFEST_INVALID' });
          chunks.push(c);
        }
      } finally {
        body.destroy();
      }
      return Buffer.concat(chunks);
    });
  }

  async readPart(name: string, size: number, onBytes?: (n: number) => void): Promise<Buffer> {
    const key = this.key(name);
    return this.call({ action: 'GetObject', key }, async (abortSignal) => {
      let counted = 0;
      try {
        const out = await this.target.client.send(new GetObjectCommand({ Bucket: this.target.bucket, Key: key }), { abortSignal });
        const body = out.Body as Readable;
        const what = `part ${name} (s3://${this.target.bucket}/${key})`;
        try {
          // A declared length that is wrong is refused before a byte of the body is read.
          if (out.ContentLength !== undefined && out.ContentLength !== size) throw partLengthError(what, `${out.ContentLength} bytes long`, size);
          return await collectExactly(body.pipe(idleWatchdog(this.target.timeoutMs, key)), size, what,
            (n) => { counted += n; onBytes?.(n); });
        } finally {
          body.destroy();
        }
      } catch (err) {
        onBytes?.(-counted);
        throw err;
      }
    });
  }

  /**
   * PUTs one object from memory with the ACL and Content-MD5. The body goes out in 1 MiB pieces so that `onBytes`
   * moves with what the request has read (and goes back down when an attempt is retried).
   */
  async put(key: string, data: Buffer, md5 = md5Base64(data), onBytes?: (n: number) => void): Promise<void> {
    let sent = 0;
    await this.call({ action: 'PutObject', key }, (abortSignal) => {
      if (sent) onBytes?.(-sent);
      sent = 0;
      // Counted as the request pulls each piece (a 'data' listener would start the flow before the SDK reads it).
      const body = Readable.from((function* () {
        for (let o = 0; o < data.length; o += 1 << 20) {
          const piece = data.subarray(o, o + (1 << 20));
          yield piece;
          sent += piece.length;
          onBytes?.(piece.length);
        }
      })());
      return this.target.client.send(new PutObjectCommand({
        Bucket: this.target.bucket, Key: key, Body: body, ContentLength: data.length, ContentMD5: md5, ACL: this.acl as ObjectCannedACL,
      }), { abortSignal });
    });
  }

  /** Deletes one object; `cleanup` deletes even after the signal fired (removing what an interrupted run wrote). */
  async delete(key: string, cleanup = false): Promise<void> {
    if (cleanup) {
      await s3Call(this.target, { action: 'DeleteObject', key }, () => this.target.client.send(new DeleteObjectCommand({ Bucket: this.target.bucket, Key: key })));
      return;
    }
    await this.call({ action: 'DeleteObject', key }, (abortSignal) =>
      this.target.client.send(new DeleteObjectCommand({ Bucket: this.target.bucket, Key: key }), { abortSignal }));
  }

  /** Names (relative to the key prefix) of the objects starting with `prefix` that `keep` accepts, over every page (ListObjects v1 with Marker). */
  async list(prefix: string, keep: (name: string) => boolean): Promise<string[]> {
    const { target } = this;
    const full = target.keyPrefix + prefix;
    const names: string[] = [];
    let marker: string | undefined;
    for (;;) {
      const page = await this.call({ action: 'ListObjects' }, (abortSignal) =>
        target.client.send(new ListObjectsCommand({ Bucket: target.bucket, Prefix: full, Marker: marker }), { abortSignal }));
      const keys = (page.Contents ?? []).map((c) => c.Key ?? '');
      for (const key of keys) if (key.startsWith(full) && keep(key.slice(target.keyPrefix.length))) names.push(key.slice(target.keyPrefix.length));
      if (!page.IsTruncated || keys.length === 0) return names;
      marker = page.NextMarker ?? keys[keys.length - 1];
    }
  }

  createWriter(o: WriterOptions): PartWriter {
    return new S3Writer(this, o);
  }
}

/**
 * Parts go up as they come, named for the most parts the bundle can have; if the final count needs fewer digits,
 * commit() copies them to their final names inside S3. The manifest goes up last, after every part.
 */
class S3Writer implements PartWriter {
  private readonly keys = new Map<number, string>();
  private readonly written = new Set<string>();
  /** Indices of the parts whose PUT succeeded. */
  private readonly stored = new Set<number>();

  constructor(private readonly store: S3Store, private readonly naming: WriterOptions) {}

  async putPart(index: number, data: Buffer, sums: PartSums, onBytes?: (n: number) => void): Promise<void> {
    const key = this.store.key(provisionalName(this.naming, index));
    this.keys.set(index, key);
    this.written.add(key);
    await this.store.put(key, data, sums.md5, onBytes);
    this.stored.add(index);
  }

  async commit(names: string[], manifest?: { name: string; data: Buffer }): Promise<void> {
    const { target } = this.store;
    for (const [index, key] of [...this.keys].sort(([a], [b]) => a - b)) {
      const final = this.store.key(names[index]!);
      if (final === key) continue;
      await this.store.call({ action: 'CopyObject', key: final }, (abortSignal) =>
        target.client.send(new CopyObjectCommand({
          Bucket: target.bucket, Key: final, CopySource: `${target.bucket}/${key.split('/').map(encodeURIComponent).join('/')}`, ACL: this.store.acl as ObjectCannedACL,
        }), { abortSignal }));
      this.written.add(final);
      await this.store.delete(key);
      this.written.delete(key);
    }
    if (manifest) await this.store.put(this.store.key(manifest.name), manifest.data);
    this.written.clear();
    this.stored.clear();
  }

  /**
   * Deletes every object this writer put, or tried to put (the manifest is never among them: it goes last, in
   * commit), unless `keep`. Deletes even after the store's signal fired: an interrupted run removes what it wrote.
   */
  async abort(o: { keep?: boolean } = {}): Promise<AbortReport | undefined> {
    const keys = [...this.written];
    const parts = this.stored.size;
    this.written.clear();
    this.stored.clear();
    if (keys.length === 0) return undefined;
    const report = { parts, location: this.store.location, kept: Boolean(o.keep), failed: 0 };
    if (o.keep) return report;
    for (const key of keys) await this.store.delete(key, true).catch(() => { report.failed++; });
    return report;
  }
}
