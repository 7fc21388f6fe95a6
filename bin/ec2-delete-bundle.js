#!/usr/bin/env node
import '../dist/cli/delete-bundle.js';
