// Share and export: the URL that restores the view, the curl command that sends the same
// request, copying either, and downloading what is shown (PNG, npz, one channel, JSON).

import { ApiError, post, requestBody } from "./api.js";
import { $, el } from "./dom.js";
import { showError } from "./errors.js";
import { COMPARE, curlCommand, endpointOf, fileNames, networkInput, ownWeights, requestToSend, sentFiles, toQuery } from "./state.js";
import { copyText, linkNote } from "./story.js";

/**
 * The URL, the curl command and the note on files follow the settings.
 * @param {object} state
 */
export function updateShare(state) {
  history.replaceState(null, "", toQuery({ scenario: state.scenario, request: state.request, view: state.view }));
  const names = fileNames(state.files);
  const spec = requestToSend(state.request, state.files, ownWeights(state));
  $("curl").textContent = curlCommand(location.origin, endpointOf(state), spec, names, $("curl-format").value || "json");
  const input = networkInput(state.request, state.catalogue);
  $("link-note").textContent = linkNote(names, input ? input.photo : "");
}

/**
 * Copy text to the clipboard and say so; where the browser refuses, select the curl command.
 * @param {string} text
 * @param {string} done what to say once copied
 */
export async function copy(text, done) {
  try {
    await navigator.clipboard.writeText(text);
    $("copied").textContent = done;
  } catch {
    // Clipboard needs a secure context or a permission; select the text for Ctrl+C instead.
    const range = document.createRange();
    range.selectNodeContents($("curl"));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    $("copied").textContent = copyText.select;
  }
}

/**
 * Download what is shown in a format; `picture` ({panel, channel}) asks for one channel's PNG.
 * @param {object} state
 * @param {string} format
 * @param {{panel: string, channel: string}} [picture]
 */
export async function download(state, format, picture) {
  const path = endpointOf(state);
  const params = new URLSearchParams({ format });
  if (picture) {
    params.set("panel", picture.panel);
    params.set("channel", picture.channel);
    params.set("scale", state.view.scale);
  }
  const query = path === COMPARE ? `?${params}` : "";
  try {
    const r = await post(path + query, requestBody(requestToSend(state.request, state.files, ownWeights(state)), sentFiles(state.files)));
    const url = URL.createObjectURL(await r.blob());
    const name = picture ? `onebyone-${picture.panel}-${picture.channel}.png` : `onebyone.${format}`;
    const a = el("a", { href: url, download: path === COMPARE ? name : `onebyone-${path.split("/").pop()}.json` });
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (err) {
    if (err instanceof ApiError) showError(err);
    else throw err;
  }
}
