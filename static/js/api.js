// The HTTP client: a request body from a spec and files, POST with the API's errors as ApiError,
// Server-Sent Events, and "the latest request wins" for a kind of request the page repeats.

import { unreachable } from "./story.js";

/** An error with the API's fields ({detail, field, code}), so the page can place it by `field`. */
export class ApiError extends Error {
  /**
   * @param {number} status the HTTP status, 0 where no answer came
   * @param {{detail?: string, field?: string|null, code?: string|null}} body
   */
  constructor(status, body) {
    super(body.detail || `HTTP ${status}`);
    this.status = status;
    this.detail = body.detail || `HTTP ${status}`;
    this.field = body.field ?? null;
    this.code = body.code ?? null;
  }
}

/**
 * Any failure of a request as an ApiError: the API's own as they are, anything else (no network,
 * a server that is gone) as status 0 with a sentence that says so.
 * @param {Error} err
 * @returns {ApiError}
 */
export function asApiError(err) {
  return err instanceof ApiError ? err : new ApiError(0, { detail: unreachable(err.message) });
}

/**
 * The body of a request: JSON, or with files multipart (file parts `input`, `weights` and
 * `photo`, and the spec as the part `spec`), as the API takes it.
 * @param {object} spec
 * @param {{input?: File|null, weights?: File|null, photo?: File|null}} files the files to send (state.js's sentFiles)
 * @returns {{body: string|FormData, headers: Record<string, string>}}
 */
export function requestBody(spec, files) {
  if (!files.input && !files.weights && !files.photo) {
    return { body: JSON.stringify(spec), headers: { "Content-Type": "application/json" } };
  }
  const form = new FormData();
  if (files.input) form.append("input", files.input);
  if (files.weights) form.append("weights", files.weights);
  if (files.photo) form.append("photo", files.photo);
  form.append("spec", JSON.stringify(spec));
  return { body: form, headers: {} };
}

/**
 * POST a body; a refusal throws ApiError with the API's detail, field and code.
 * @param {string} path with its query
 * @param {{body: string|FormData, headers: Record<string, string>}} req
 * @param {{signal?: AbortSignal, accept?: string}} [opts]
 * @returns {Promise<Response>}
 */
export async function post(path, req, opts = {}) {
  const headers = opts.accept ? { ...req.headers, Accept: opts.accept } : req.headers;
  const r = await fetch(path, { method: "POST", body: req.body, headers, signal: opts.signal });
  if (!r.ok) throw new ApiError(r.status, await r.json().catch(() => ({ detail: r.statusText })));
  return r;
}

/**
 * Split Server-Sent Events text into complete events and the unfinished rest.
 * @param {string} buffer text received so far
 * @returns {{events: {event: string, data: any}[], rest: string}}
 */
export function parseSSE(buffer) {
  const events = [];
  const blocks = buffer.split("\n\n");
  const rest = blocks.pop() ?? "";
  for (const block of blocks) {
    let event = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event: ")) event = line.slice(7);
      else if (line.startsWith("data: ")) data.push(line.slice(6));
    }
    if (data.length) events.push({ event, data: JSON.parse(data.join("\n")) });
  }
  return { events, rest };
}

/**
 * The events of a streamed response, as they come.
 * @param {Response} response
 * @returns {AsyncGenerator<{event: string, data: any}>}
 */
export async function* events(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    const parsed = parseSSE(buffer + value);
    buffer = parsed.rest;
    yield* parsed.events;
  }
}

/**
 * One kind of request where only the latest counts (the comparison, a checkpoint's listing):
 * starting one aborts the one in flight, and an answer to an older one is never used.
 */
export class Latest {
  #seq = 0;
  #controller = null;

  /**
   * Run `send` as the latest request of its kind.
   * @template T
   * @param {(signal: AbortSignal) => Promise<T>} send
   * @returns {Promise<{value: T}|null>} its value; null once a newer request or cancel() has
   *   overtaken it (its answer, or its failure, belongs to nobody)
   * @throws {ApiError} its failure, while it is still the latest
   */
  async run(send) {
    this.cancel();
    const controller = new AbortController();
    this.#controller = controller;
    const seq = this.#seq;
    try {
      const value = await send(controller.signal);
      return seq === this.#seq ? { value } : null;
    } catch (err) {
      if (seq !== this.#seq || err.name === "AbortError") return null;
      throw asApiError(err);
    }
  }

  /** Abort the request in flight, if any, and make sure no answer to it is used. */
  cancel() {
    if (this.#controller) this.#controller.abort();
    this.#controller = null;
    this.#seq++;
  }
}
