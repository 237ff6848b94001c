import { defineRoundTripSuite } from './roundtrip-suite.js';

defineRoundTripSuite('posix');
