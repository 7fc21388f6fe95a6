#!/usr/bin/env node
import '../dist/cli/unbundle.js';
