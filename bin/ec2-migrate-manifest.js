#!/usr/bin/env node
import '../dist/cli/migrate-manifest.js';
