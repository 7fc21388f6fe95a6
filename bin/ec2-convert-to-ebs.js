#!/usr/bin/env node
import { main } from '../dist/cli/convert-to-ebs.js';
import { exitAfterFlush } from '../dist/cli/command.js';

await exitAfterFlush(await main(process.argv));
