#!/usr/bin/env node
import { main } from '../dist/cli/unbundle.js';
import { exitAfterFlush } from '../dist/cli/command.js';

await exitAfterFlush(await main(process.argv));
