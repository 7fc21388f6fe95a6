// Progress on a terminal: an ETA, and upload progress that moves with bytes, not only when a part is done.
import { describe, expect, it } from 'vitest';
import { formatDuration, progressText } from '../../src/cli/reporter.js';
import { createS3Target } from '../../src/s3/client.js';
import { uploadBundle } from '../../src/bundle/upload-bundle.js';
import { S3Store } from '../../src/store/s3-store.js';
import { s3rverWithMultipartBundle } from '../helpers/s3-fixture.js';

describe('the live progress line', () => {
  it('shows bytes, percentage, rate and the time left once a second has passed', () => {
    const MiB = 1024 * 1024;
    expect(progressText('Uploading', 12 * MiB, 30 * MiB, 3, '1/3 parts')).toBe('Uploading 12.0 MiB of 30.0 MiB (40%), 4.0 MiB/s, 5s left, 1/3 parts');
    expect(progressText('Bundling', MiB, 600 * MiB, 0.5)).toBe('Bundling 1.0 MiB of 600.0 MiB (0%), 2.0 MiB/s');
    expect(progressText('Bundling', 0, undefined, 2)).toBe('Bundling 0 B, 0 B/s');
    expect([formatDuration(45), formatDuration(185), formatDuration(3720)]).toEqual(['45s', '3m05s', '1h02m']);
  });
});

describe('upload progress', () => {
  const ctx = s3rverWithMultipartBundle();

  it('reports bytes as each part is read into its request, ending at the total', async () => {
    const target = createS3Target({ bucket: 'progress', endpoint: ctx.server.url, accessKey: 'S3RVER', secretKey: 'S3RVER', concurrency: 1 }, { env: {} });
    const calls: [number, number, number][] = [];
    try {
      await uploadBundle({ store: new S3Store(target), manifestPath: ctx.bundle.manifest, onEvent: (e) => { if (e.type === 'progress') calls.push([e.bytes, e.totalBytes!, e.parts!]); } });
    } finally {
      target.client.destroy();
    }
    const total = calls[0]![1];
    expect(calls[calls.length - 1]).toEqual([total, total, 3]);
    // With one transfer at a time: more updates than parts, many of them inside a part.
    const inside = calls.filter(([done, , parts]) => parts === 0 && done > 0 && done < 10 * 1024 * 1024);
    expect(inside.length).toBeGreaterThan(2);
    for (let i = 1; i < calls.length; i++) expect(calls[i]![0]).toBeGreaterThanOrEqual(calls[i - 1]![0]);
  });
});
