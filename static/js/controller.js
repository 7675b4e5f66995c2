// What the learner's actions do: each one changes the state, the settings and the link follow
// at once, and the request runs after a pause for typing. One comparison (or experiment) and
// one checkpoint listing are in flight at most: the latest request of each wins.

import { Latest, post, requestBody } from "./api.js";
import { MATRIX, TRAINED, parseNumber } from "./controls.js";
import { $ } from "./dom.js";
import { clearErrors } from "./errors.js";
import { VIEWS } from "./experiments.js";
import * as panels from "./panels.js";
import { experimentRoot, render, renderUnavailable, showFailure, showStatus } from "./results.js";
import { clearChoosers, showInputParams, showScenarios, showWeightParams, syncSettings } from "./settings.js";
import { updateShare } from "./share.js";
import {
  COMPARE,
  classMatches,
  endpointOf,
  findClass,
  fitMatrix,
  freshNetwork,
  generatedTwin,
  holding,
  isNetworkGenerator,
  networkInput,
  requestToSend,
  roundedWeights,
  scenarioById,
  sentFiles,
  setPath,
  shownReport,
  snapshot,
} from "./state.js";
import { capturedNote, gridText, invalid, matrixText, networkText } from "./story.js";

/**
 * The page's actions on one state.
 * @param {ReturnType<typeof import("./state.js").createState>} state
 */
export function controller(state) {
  const runs = new Latest(); // the comparison or experiment on screen
  const listings = new Latest(); // the layers of the weights file being read
  let timer = 0;
  /** The handlers the views hand edits to. */
  const on = {
    param: onParam,
    cell: onCell,
    /** A class of the top 5 picked as class a. */
    useClass(name) {
      $("class-a").value = name;
      setClass("a", $("class-a"));
    },
  };

  function setStatus(status) {
    state.status = status;
    showStatus(state);
  }

  function fail(error) {
    state.error = error;
    showFailure(state, fixWeights);
    setStatus("error");
  }

  /** No run is due, and none in flight may cover what the page shows now. */
  function stop() {
    clearTimeout(timer);
    runs.cancel();
  }

  /** Send the current request; a newer one aborts it, and a stale answer is ignored. */
  async function run() {
    clearTimeout(timer);
    const snap = snapshot(state);
    const hold = holding(state);
    if (hold) {
      runs.cancel();
      if (hold === "unavailable") {
        state.shown = null; // nothing on screen answers this scenario
        renderUnavailable(state);
      }
      setStatus(hold);
      return;
    }
    setStatus("pending");
    const req = requestBody(requestToSend(snap.request, snap.files, snap.own), sentFiles(snap.files));
    const view = VIEWS[snap.endpoint];
    let outcome;
    try {
      outcome = await runs.run(async (signal) => {
        if (view && view.run) {
          // A streamed experiment draws its progress as it comes: show its view now.
          const twin = generatedTwin(snap.request, snap.endpoint, state.catalogue);
          return view.run(experimentRoot(), req, { signal, endpoint: snap.endpoint, request: snap.request, luts: state.luts, twin });
        }
        const query = snap.endpoint === COMPARE ? "?format=json" : "";
        return (await post(snap.endpoint + query, req, { signal })).json();
      });
    } catch (err) {
      fail(err);
      return;
    }
    if (!outcome) return; // a newer request owns the page
    performance.mark("onebyone:response");
    state.shown = { ...snap, response: outcome.value };
    state.error = null;
    clearErrors();
    render(state, on);
    setStatus("ready");
  }

  /** After any edit: everything that follows the request at once, then the run. */
  function edited(delay) {
    setStatus("pending"); // what is on screen is now older than the controls
    syncSettings(state, on);
    showScenarios(state);
    updateShare(state);
    if (showInvalid()) return;
    if (state.error && state.error.code === "not_sent") {
      // The value that could not be sent is fixed: its message goes.
      state.error = null;
      clearErrors();
    }
    clearTimeout(timer);
    timer = setTimeout(run, delay);
  }

  /**
   * A control holds a value the page cannot send: nothing is sent, the message sits next to
   * the control, and what is on screen is marked as not updated, as for a refusal.
   */
  function markInvalid(field, control, detail) {
    state.invalid.set(field, { control, detail });
    edited(0);
  }

  function markValid(field, control) {
    state.invalid.delete(field);
    if (control) control.removeAttribute("aria-invalid");
  }

  /** Show the latest value that cannot be sent, and cancel any run of the settings before it. */
  function showInvalid() {
    for (const [field, v] of state.invalid) if (!v.control.isConnected) state.invalid.delete(field);
    const last = [...state.invalid].pop();
    if (!last) return false;
    const [field, { control, detail }] = last;
    stop(); // an answer for the settings before this edit must not cover it
    fail({ status: 0, detail, field, code: "not_sent" });
    for (const v of state.invalid.values()) v.control.setAttribute("aria-invalid", "true");
    control.setAttribute("aria-invalid", "true");
    return true;
  }

  /** A parameter input changed: parse it, and send unless it is half typed. */
  function onParam(path, text, type, typed) {
    const { control, label, bad } = typed;
    let value;
    if (type === "choice") {
      markValid(path, control);
      setPath(state.request, path, text);
      followInput(path);
      edited(0);
      return;
    }
    if (type === "ints") {
      const parts = text.split(",");
      if (parts.every((p) => p.trim() === "") && !bad) value = undefined;
      else {
        value = parts.map((p) => parseNumber(p, "int"));
        if (bad || value.some((v) => v === null)) {
          markInvalid(path, control, invalid.pair(path.split(".").pop()));
          return;
        }
      }
    } else if (text.trim() === "" && !bad) {
      value = undefined; // the server's default
    } else {
      value = parseNumber(text, type === "int" ? "int" : "float");
      if (value === null) {
        // Never round what was typed: 3.5 for H is refused here, not run as 3.
        const whole = type === "int" && parseNumber(text, "float") !== null;
        markInvalid(path, control, invalid.number(label, text, whole));
        return;
      }
    }
    markValid(path, control);
    setPath(state.request, path, value);
    if (path === "input.channels" && state.request.weights && state.request.weights.matrix && Number.isInteger(value)) {
      fitMatrix(state, value);
    }
    edited(300);
  }

  /** A weight cell changed: the layer becomes an explicit matrix (the one on screen) with this edit. */
  function onCell(k, c, text, input, rows) {
    const v = parseNumber(text, "float");
    const field = c === "bias" ? `weights.bias.${k}` : `weights.matrix.${k}.${c}`;
    if (v === null) {
      markInvalid(field, input, invalid.cell(gridText.cell(k, c, rows), text.trim() === ""));
      return;
    }
    markValid(field, input);
    state.matrixBase = null;
    state.editedCell = true;
    if (!state.request.weights.matrix) {
      const w = roundedWeights(shownReport(state));
      if (!w) return;
      state.request.weights = w;
      state.matrixNote = matrixText.nowExplicit;
      showWeightParams(state, on);
    }
    const wts = state.request.weights;
    if (!Array.isArray(wts.bias)) wts.bias = wts.matrix.map(() => Number(wts.bias || 0));
    if (c === "bias") wts.bias[k] = v;
    else wts.matrix[k][c] = v;
    edited(300);
  }

  /**
   * The network's layer or photo changed: a photo picked by name replaces one sent, the
   * classes go with a layer that has none, and an explicit W follows the layer's C.
   * @param {string} path the input's field that changed
   */
  function followInput(path) {
    const input = networkInput(state.request, state.catalogue);
    if (!input) return;
    if (path === "input.photo") setPhotoFile(null);
    const w = state.request.weights;
    if (w && w.network && input.layer && input.layer.role !== "classifier") {
      delete w.classes;
      delete w.minus;
      state.classHints = { a: "", b: "" };
    }
    if (w && w.matrix && input.layer) fitMatrix(state, input.layer.in_channels);
  }

  /**
   * Another generator: the sizes and seed stay, its channel rule applies. A trained network's
   * generator takes no sizes (its layer decides them) and brings its layer's own weights.
   * @param {string} name
   */
  function setGenerator(name) {
    const g = state.catalogue.generators[name];
    const old = state.request.input || {};
    const input = { generator: name };
    const w = state.request.weights;
    if (isNetworkGenerator(state.catalogue, name)) {
      state.request.input = input;
      const compare = endpointOf(state) === COMPARE;
      if (compare && !state.network.on && (!w || !w.network)) state.request.weights = { network: g.params.network.default };
      showInputParams(state, on);
      showWeightParams(state, on);
      followInput("input.generator");
      edited(0);
      return;
    }
    for (const key of ["height", "width", "channels", "seed"]) if (old[key] !== undefined) input[key] = old[key];
    if (g.fixed_channels) input.channels = g.fixed_channels;
    else if ((input.channels ?? g.params.channels.default) < g.min_channels) input.channels = g.min_channels;
    state.request.input = input;
    setPhotoFile(null);
    // A network's weights need its maps: the server's default weights instead.
    if (w && w.network) state.request.weights = {};
    showInputParams(state, on);
    showWeightParams(state, on);
    if (state.request.weights && state.request.weights.matrix && input.channels) fitMatrix(state, input.channels);
    edited(0);
  }

  /**
   * Another preset, or the explicit matrix (the weights on screen, to edit).
   * @param {string} name a preset's name or MATRIX
   */
  function setPreset(name) {
    if (name === TRAINED) {
      const input = networkInput(state.request, state.catalogue);
      state.request.weights = { network: input ? input.name : undefined };
      state.matrixNote = "";
    } else if (name === MATRIX) {
      const w = roundedWeights(shownReport(state));
      if (w) {
        state.request.weights = w;
        state.matrixNote = matrixText.fromScreen;
      }
    } else {
      state.request.weights = { preset: name };
      state.matrixNote = "";
    }
    state.matrixBase = null;
    showWeightParams(state, on);
    edited(0);
  }

  /**
   * The one-click fix next to a weights matrix that does not fit the input.
   * @param {number|undefined} c the input's C when the refusal came
   */
  function fixWeights(c) {
    if (!state.files.input && c) fitMatrix(state, c);
    else {
      state.request.weights = {};
      state.matrixBase = null;
    }
    showWeightParams(state, on);
    edited(0);
  }

  /** @param {string} id a scenario's id: its request, no files, nothing typed kept */
  function selectScenario(id) {
    const s = scenarioById(state.catalogue, id);
    state.scenario = s.id;
    state.request = structuredClone(s.request);
    state.files = { input: null, weights: null, photo: null };
    leaveNetwork();
    clearChoosers("input-file", "weights-file", "net-file", "net-acts-file", "photo-file");
    state.classHints = { a: "", b: "" };
    state.matrixNote = "";
    state.matrixBase = null;
    state.invalid.clear();
    state.editedCell = false;
    panels.resetCursor();
    syncSettings(state, on, true);
    edited(0);
  }

  /**
   * A file chosen (or cleared, with null) for the input or the weights.
   * @param {"input"|"weights"} kind
   * @param {File|null} file
   */
  function setFile(kind, file) {
    state.files[kind] = file || null;
    if (!file) clearChoosers(`${kind}-file`);
    if (!file && kind === "input") clearChoosers("net-acts-file");
    if (kind === "weights") {
      // A weights file is read for its 1×1 layers first, whichever control brought it.
      if (file) {
        state.network.on = true;
        listLayers(file);
        return;
      }
      leaveNetwork();
    }
    if (!state.files.input && !state.files.weights) state.network.on = false;
    edited(0);
  }

  /**
   * An input file from one of the two drop zones.
   * @param {File} file
   * @param {"drop"|"net"} from "net": under "Your own network", which it puts in use
   */
  function setInput(file, from) {
    if (from === "net") state.network.on = true;
    state.inputFrom = from;
    setFile("input", file);
  }

  /** @param {File|null} file a photo for the network's maps, in place of the built-in one */
  function setPhotoFile(file) {
    state.files.photo = file || null;
    if (!file) clearChoosers("photo-file");
  }

  /**
   * A class typed or picked in a class field ("a": the class, "b": the one subtracted). A name
   * in full is sent; part of one waits, saying which names contain it; one that no name
   * contains is marked, and nothing is sent.
   * @param {"a"|"b"} which
   * @param {HTMLInputElement} control
   */
  function setClass(which, control) {
    const w = state.request.weights;
    if (!w || !w.network) return;
    const names = (state.catalogue.networks[w.network] || { classes: [] }).classes;
    const field = which === "a" ? "weights.classes" : "weights.minus";
    const text = control.value;
    const found = findClass(names, text);
    const wasInvalid = state.invalid.has(field);
    if (found === null) {
      const matches = classMatches(names, text);
      if (!matches.length) {
        state.classHints[which] = "";
        markInvalid(field, control, networkText.noClass(text));
        return;
      }
      markValid(field, control);
      state.classHints[which] = networkText.partial(text.trim(), matches);
      syncSettings(state, on);
      // The last value that could not be sent is gone: what is on screen is current again.
      if (wasInvalid) edited(0);
      return;
    }
    if (which === "a" && !found && w.minus) {
      // Class a emptied while b stays: W[a] − W[b] waits for a new a.
      markValid(field, control);
      state.classHints.a = networkText.needA;
      syncSettings(state, on);
      return;
    }
    markValid(field, control);
    state.classHints[which] = "";
    if (which === "a") {
      if (found) w.classes = [found];
      else delete w.classes;
    } else if (found) w.minus = found;
    else delete w.minus;
    markValid("weights.minus", $("class-b"));
    if (w.minus && !w.classes) {
      markInvalid("weights.minus", $("class-b"), networkText.minusAlone);
      return;
    }
    edited(300);
  }

  /** Back to the preset: no weights file, the network's choices forgotten (an input file stays). */
  function leaveNetwork() {
    listings.cancel();
    state.network = freshNetwork();
    state.files.weights = null;
    clearChoosers("weights-file", "net-file");
  }

  /** Ask the server for the weights file's 1×1 layers; the latest file wins. */
  async function listLayers(file) {
    const net = state.network;
    Object.assign(net, { reading: file.name, listing: null, note: "" });
    const form = new FormData();
    form.append("weights", file);
    const asked = listings.run(async (signal) => (await post(state.catalogue.checkpoint.layers_endpoint, { body: form, headers: {} }, { signal })).json());
    edited(0);
    let outcome;
    try {
      outcome = await asked;
    } catch (err) {
      net.reading = null;
      stop(); // a compare in flight must not cover this refusal
      // Only the checkpoint went with this request: an error without a field is about it.
      state.error = { status: err.status, detail: err.detail, field: err.field || "weights", code: err.code };
      syncSettings(state, on);
      fail(state.error);
      return;
    }
    if (!outcome) return;
    const listing = outcome.value;
    net.reading = null;
    if (state.error && state.error.field && state.error.field.startsWith("weights")) {
      // The refusal was about the weights file this one replaces.
      state.error = null;
      clearErrors();
    }
    if (listing.input) {
      // A file from `onebyone capture`: activations and layer in one, so it is the input.
      const replaced = state.files.input ? state.files.input.name : undefined;
      state.files.weights = null;
      state.files.input = file;
      state.inputFrom = "net";
      net.note = capturedNote(file.name, listing.input, replaced);
    } else {
      net.listing = listing;
      if (!listing.layers.some((l) => l.name === net.layer)) net.layer = listing.layers[0].name;
    }
    edited(0);
  }

  /**
   * ε of the batch norm, as typed; a value that is no number is marked and not used.
   * @param {HTMLInputElement} input
   */
  function setEps(input) {
    const text = input.value;
    const v = text.trim() === "" ? undefined : parseNumber(text, "float");
    if (v === null) {
      input.setAttribute("aria-invalid", "true");
      return;
    }
    input.removeAttribute("aria-invalid");
    state.network.eps = v;
    edited(300);
  }

  /** Draw the comparison on screen again, if one is; returns whether it did. */
  function redraw() {
    if (!shownReport(state)) return false;
    render(state, on);
    return true;
  }

  return {
    /** The first run: the controls show the state (restored from the URL), then it is sent. */
    start() {
      syncSettings(state, on, true);
      showScenarios(state);
      updateShare(state);
      return run();
    },
    setGenerator,
    setPreset,
    selectScenario,
    setFile,
    setInput,
    setEps,
    setClass,
    redraw,
    /** @param {File|null} file a photo for the network's maps (null: the built-in one again) */
    setPhoto(file) {
      setPhotoFile(file);
      edited(0);
    },
    /**
     * A view setting (not sent): the link follows, and the comparison is drawn again.
     * @param {"scale"|"extra"} key
     * @param {any} value
     */
    setView(key, value) {
      state.view[key] = value;
      updateShare(state);
      redraw();
    },
    /** The curl command's format changed. */
    shareChanged: () => updateShare(state),
    /** @param {string} path e.g. "device", "input.layout" @param {any} value */
    set(path, value) {
      setPath(state.request, path, value);
      edited(0);
    },
    /** @param {string} layer the checkpoint's layer to use */
    setLayer(layer) {
      state.network.layer = layer;
      edited(0);
    },
    /** @param {string} choice what to do with the batch norm after it */
    setBatchnorm(choice) {
      state.network.batchnorm = choice;
      edited(0);
    },
    /** @param {string} choice what to do with the batch norm after the trained layer */
    setTrainedBatchnorm(choice) {
      state.request.weights.batchnorm = choice;
      edited(0);
    },
  };
}
