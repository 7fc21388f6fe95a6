#!/usr/bin/env node
import '../dist/cli/upload-bundle.js';
