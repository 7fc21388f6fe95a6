import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
    // The commands run with a configured region, as most users have one: without any, the S3 commands first ask the
    // bucket for its region (a HeadBucket), which the region tests (test/cli/aws-settings.test.ts) exercise on purpose.
    env: { AWS_REGION: 'us-east-1' },
  },
});
