/** Runs a CLI command in process, its stdout and stderr captured. */
import type { Output } from "../../src/cli/check.js";

export interface CommandRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export async function captured(run: (out: Output) => Promise<number>): Promise<CommandRun> {
  let stdout = "";
  let stderr = "";
  const out = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
  };
  const code = await run(out);
  return { code, stdout, stderr };
}
