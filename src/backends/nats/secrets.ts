/**
 * Resolves the secrets of the NATS auth settings. routes.yaml never holds a secret
 * inline: each is `{env: VAR}` or `{file: path}`, read once at start so a missing
 * one fails the start with its name rather than a vague auth error later.
 */
import { readFileSync } from "node:fs";
import type { SecretRef } from "../../config/types.js";
import { TurnoutError } from "../../errors.js";

/** The secret's value; `key` (e.g. `nats.auth.token`) names the setting in the error. */
export function resolveSecret(ref: SecretRef, key: string): string {
  if ("env" in ref) {
    const value = process.env[ref.env];
    if (value === undefined || value === "") {
      throw configError(`${key}: environment variable ${ref.env} is not set or empty`);
    }
    return value;
  }
  return readSecretFile(ref.file, key);
}

/** A file's content without its trailing newline, which editors add and servers never expect. */
export function readSecretFile(file: string, key: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? String(err);
    throw configError(`${key}: cannot read secret file ${file} (${reason})`, err);
  }
  const value = text.replace(/\r?\n$/, "");
  if (value === "") throw configError(`${key}: secret file ${file} is empty`);
  return value;
}

function configError(message: string, cause?: unknown): TurnoutError {
  return new TurnoutError("TURNOUT_ERR_CONFIG", message, { cause });
}
