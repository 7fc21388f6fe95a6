#!/usr/bin/env node
import '../dist/cli/download-bundle.js';
