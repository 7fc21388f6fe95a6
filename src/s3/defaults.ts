// S3 defaults, apart from the client so that --help can show them without loading the AWS SDK.
export const DEFAULT_URL = 'https://s3.amazonaws.com';
export const DEFAULT_REGION = 'us-east-1';
export const DEFAULT_CONCURRENCY = 4;
export const DEFAULT_TIMEOUT_S = 60;

/** The canned ACLs a bundle can be written with; EC2 needs aws-exec-read (or public-read) to read it. */
export const ACLS = ['aws-exec-read', 'public-read', 'bucket-owner-full-control', 'private'] as const;
export type Acl = (typeof ACLS)[number];
