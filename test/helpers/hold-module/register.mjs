/**
 * `node --import ./test/helpers/hold-module/register.mjs ...`: holds the load of
 * one module until the test lets it go, so a test can act (send a signal)
 * while the process is still loading its code, every time. The module is the
 * one whose URL ends with TURNOUT_TEST_HOLD_MODULE; TURNOUT_TEST_HOLD_DIR gets
 * a file `held` once its load waits, and the load goes on once the test
 * creates `release` there (or after 20 s).
 */
import { register } from "node:module";

register("./hooks.mjs", import.meta.url, {
  data: {
    suffix: process.env.TURNOUT_TEST_HOLD_MODULE,
    dir: process.env.TURNOUT_TEST_HOLD_DIR,
  },
});
