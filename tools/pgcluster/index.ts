/** Throwaway PostgreSQL clusters for `npm run demo`, tests and benchmarks. Not shipped in the npm package. */
export { ClusterError } from './errors.js';
export { PgCluster, SUPERUSER } from './cluster.js';
export type {
  BaseBackup,
  BaseBackupOptions,
  ClusterOptions,
  ConnectionInfo,
  FromBackupOptions,
  GenerateWalOptions,
  RecoveryOptions,
  StopOptions,
} from './cluster.js';
export { availableMajors, discoverBinaries, findBinaries, majorOfVersion, SUPPORTED_MAJORS } from './binaries.js';
export type { PgBinaries, PgMajor } from './binaries.js';
export { pgUser } from './user.js';
export type { PgUser } from './user.js';
export type { ConfMap, ConfValue } from './conf.js';
export { cleanupAllSync, liveClusterCount } from './registry.js';
