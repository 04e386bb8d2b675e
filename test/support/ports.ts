/** One implementation for the demo and the tests: a loopback port confirmed free by binding it. */
export { freePort } from '../../src/demo/redis-process.js';
