#!/usr/bin/env node
import '../dist/cli/ami-tools-version.js';
