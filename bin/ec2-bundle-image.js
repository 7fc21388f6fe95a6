#!/usr/bin/env node
import '../dist/cli/bundle-image.js';
