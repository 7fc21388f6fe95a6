/**
 * The one event shape every operation reports through. The CLI renders events as the original's lines, a progress
 * line on a terminal, or JSON; a library caller may ignore them.
 */
export type AmiToolsEvent =
  /** Bytes of the operation's main stream done so far, of the total when known. */
  | { type: 'progress'; bytes: number; totalBytes?: number; parts?: number; totalParts?: number }
  /** A part reached its final place (or was skipped or deleted). */
  | { type: 'part'; action: 'created' | 'uploaded' | 'downloaded' | 'skipped' | 'deleted'; name: string; size?: number; sha1?: string }
  /** A step of the operation began, for the lines the original prints between parts. */
  | { type: 'step'; step: OperationStep; name?: string }
  /** A failed bundling's parts already in a remote store: removed, or kept as asked (`failed`: removals that failed). */
  | { type: 'partial'; action: 'removed' | 'kept'; parts: number; location: string; failed: number }
  /** Something the user should know that does not stop the operation. */
  | { type: 'warning'; message: string }
  /** A transient failure, about to be retried. */
  | { type: 'retry'; what: string; attempt: number; attempts: number; delayMs: number; reason: string };

export type OperationStep =
  | 'creating-bucket' | 'uploading-parts' | 'uploading-manifest' | 'manifest-uploaded' | 'skipping-manifest'
  | 'downloading-manifest' | 'decrypting-manifest' | 'downloading-part'
  | 'nothing-to-delete' | 'deleting-bucket' | 'deregistered-image'
  // ec2-convert-to-ebs: `name` carries the snapshot id, the image id, a removed fstab line or a snapshot's progress.
  | 'unbundling' | 'snapshot-started' | 'writing-snapshot' | 'waiting-for-snapshot' | 'snapshot-completed'
  | 'editing-fstab' | 'fstab-entry-removed' | 'creating-snapshot' | 'registering-image';

export type EventHandler = (event: AmiToolsEvent) => void;
