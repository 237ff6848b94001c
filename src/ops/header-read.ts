// Moved to src/archive (push checks existing objects with it); kept here for the ops modules and tests.
export { readObjectHeader } from '../archive/header-read.js';
