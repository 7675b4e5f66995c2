// The page's wiring: what the server knows is read once from the template's data block, the
// state is made from it and the URL, and every control's event goes to the controller.
// Views, HTTP, pixel maths and sentences live in their own modules (see controller.js).

import { controller } from "./controller.js";
import { buildControls } from "./controls.js";
import { $, dropZone, el, readData } from "./dom.js";
import { decodeBase64 } from "./heatmap.js";
import * as panels from "./panels.js";
import { copy, download } from "./share.js";
import { createState } from "./state.js";
import { copyText, settingsText } from "./story.js";

const data = readData("page-data");
const state = createState(
  {
    catalogue: data.catalogue,
    luts: { sequential: decodeBase64(data.colormaps.sequential.rgb), diverging: decodeBase64(data.colormaps.diverging.rgb) },
    panels: data.panels,
  },
  location.search,
);
const page = controller(state);

buildControls(state.catalogue);
// On a phone the settings start folded, so the maps come first.
if (window.matchMedia("(max-width: 700px)").matches) {
  $("settings").open = false;
  $("numbers-box").open = false;
}
wire();
page.start();

function wire() {
  $("generator").addEventListener("change", () => page.setGenerator($("generator").value));
  $("preset").addEventListener("change", () => page.setPreset($("preset").value));
  $("device").addEventListener("change", () => page.set("device", $("device").value));
  $("layout").addEventListener("change", () => page.set("input.layout", $("layout").value));
  $("filterbank").addEventListener("change", () => page.set("input.features", $("filterbank").checked ? "filterbank" : "raw"));
  for (const radio of document.querySelectorAll("input[name=scale]")) {
    radio.addEventListener("change", () => page.setView("scale", radio.value));
  }
  $("extra").addEventListener("change", () => page.setView("extra", $("extra").checked));
  for (const b of document.querySelectorAll("button.scenario[data-scenario]")) {
    b.append(el("span", { className: "badge", textContent: settingsText.changed, hidden: true }));
    b.addEventListener("click", () => page.selectScenario(b.dataset.scenario));
  }
  $("reset").addEventListener("click", () => page.selectScenario(state.scenario));

  const ownInput = (file) => page.setInput(file, "drop");
  const networkInput = (file) => page.setInput(file, "net");
  const weights = (file) => page.setFile("weights", file);
  $("input-file").addEventListener("change", () => ownInput($("input-file").files[0]));
  $("weights-file").addEventListener("change", () => weights($("weights-file").files[0]));
  $("net-file").addEventListener("change", () => weights($("net-file").files[0]));
  $("net-acts-file").addEventListener("change", () => networkInput($("net-acts-file").files[0]));
  $("clear-input").addEventListener("click", () => page.setFile("input", null));
  $("clear-weights").addEventListener("click", () => page.setFile("weights", null));
  $("net-leave").addEventListener("click", () => page.setFile("weights", null));
  dropZone($("drop"), $("input-file"), ownInput);
  dropZone($("net-drop"), $("net-file"), weights);
  dropZone($("net-acts"), $("net-acts-file"), networkInput);
  $("weights-choose").addEventListener("click", () => $("weights-file").click());
  $("net-layer").addEventListener("change", () => page.setLayer($("net-layer").value));
  $("net-bn-box").addEventListener("change", (e) => page.setBatchnorm(e.target.value));
  $("net-eps").addEventListener("input", () => page.setEps($("net-eps")));
  const photo = (file) => page.setPhoto(file);
  $("photo-file").addEventListener("change", () => photo($("photo-file").files[0]));
  dropZone($("photo-drop"), $("photo-file"), photo);
  $("clear-photo").addEventListener("click", () => page.setPhoto(null));
  $("trained-bn").addEventListener("change", () => page.setTrainedBatchnorm($("trained-bn").value));
  for (const which of ["a", "b"]) $(`class-${which}`).addEventListener("input", () => page.setClass(which, $(`class-${which}`)));

  $("copy-link").addEventListener("click", () => copy(location.href, copyText.link(Boolean(state.files.input || state.files.weights || state.files.photo))));
  $("copy-curl").addEventListener("click", () => copy($("curl").textContent, copyText.curl));
  $("curl-format").addEventListener("change", page.shareChanged);
  $("download-png").addEventListener("click", () => download(state, "png"));
  $("download-npz").addEventListener("click", () => download(state, "npz"));
  $("download-json").addEventListener("click", () => download(state, "json"));
  $("zoom-png").addEventListener("click", () => download(state, "png", { panel: $("zoom").dataset.col, channel: $("zoom").dataset.ch }));

  panels.setup($("panels"), state.panels);
  let width = window.innerWidth;
  window.addEventListener("resize", () => {
    // Cell sizes follow the width; a height change (a phone's toolbar) needs nothing.
    if (window.innerWidth !== width && page.redraw()) width = window.innerWidth;
  });
}
