import { notBuiltYet } from './not-built.js';

notBuiltYet('ec2-upload-bundle');
