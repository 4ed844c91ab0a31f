/**
 * CutoverBucket's failures against a real KV bucket: a rollback that loses a
 * race is a conflict (409, try again), while a KV call that could not be made
 * is a 503 naming what failed, never a bare 500.
 */
import { connect } from "@nats-io/transport-node";
import t from "tap";
import { CutoverBucket } from "../../src/control/cutover-store.js";
import { startNatsServer } from "../../src/devtools/nats-server.js";

const server = await startNatsServer({ jetstream: true });
t.teardown(() => server.stop());

async function bucketOn() {
  const nc = await connect({ servers: server.url });
  return { nc, bucket: await CutoverBucket.open(nc) };
}

const change = (nats: number) => ({ nats, shadow: 0, by: "test", reason: `to ${nats}` });

t.test("a rollback that another write overtakes is a conflict to try again", async (t) => {
  const { nc, bucket } = await bucketOn();
  t.teardown(() => nc.close());
  await bucket.set("race.get", change(10));
  await bucket.set("race.get", change(20));
  // The check runs between reading the history and writing: another replica writes then.
  const racing = bucket.rollback("race.get", { by: "test", reason: undefined }, () => {
    void bucket.set("race.get", change(30));
  });
  await t.rejects(racing, {
    code: "TURNOUT_ERR_CUTOVER_CONFLICT",
    message: /changed while rolling back/,
  });
});

t.test("KV calls on a closed connection are 503s naming what could not be done", async (t) => {
  const { nc, bucket } = await bucketOn();
  await bucket.set("closed.get", change(10));
  await bucket.set("closed.get", change(20));
  await nc.close();
  await t.rejects(bucket.set("closed.get", change(30)), {
    code: "TURNOUT_ERR_CUTOVER_UNAVAILABLE",
    message: /cannot write the cutover of closed\.get/,
  });
  await t.rejects(bucket.history("closed.get"), {
    code: "TURNOUT_ERR_CUTOVER_UNAVAILABLE",
    message: /cannot read the cutover history of closed\.get/,
  });
});
