#!/usr/bin/env node
import '../dist/cli/bundle-vol.js';
