// The stylise section's style: a trained style, a blend of two styles of one multi-style net, or the
// user's own painting (arbitrary style transfer); and, for the first two, painting only the subject
// (mask=saliency: the Grad-CAM map of the top class) with the photo or another style outside it.
// choice() turns the controls into the /v1/stylize call's query parameters and file parts.

import { byId } from "./ui.js";

// A choice the user must complete first: the message for the status line and the control to focus.
export class Incomplete extends Error {
  constructor(message, control) {
    super(message);
    this.name = "Incomplete";
    this.control = control;
  }
}

// Several nets can hold a style of the same name (starry_night alone, and in the multi-style net), so a
// listed style is (net, name): its key is the name for a net of its own, else "net/name".
export function styleKey(style) {
  return style.net === style.name ? style.name : `${style.net}/${style.name}`;
}

export function styleLabel(style) {
  const where = style.net === style.name ? "" : `, ${style.net} net`;
  return `${style.title || style.style} (${style.name}${where})`;
}

function percent(weight) {
  return Math.round(weight * 100);
}

export function setupStyleSource() {
  const radios = [...document.querySelectorAll('input[name="source"]')];
  const primary = byId("style-select");
  const second = byId("blend-second");
  const mix = byId("blend-mix");
  const painting = byId("style-image-file");
  const subject = byId("region-subject");
  const background = byId("region-background");
  let styles = [];
  const source = () => radios.find((r) => r.checked).value;

  // The second style of a blend must live in the same net as the first: the API blends norm parameters.
  const chosen = (key) => styles.find((s) => styleKey(s) === key);

  function fillSecond() {
    const first = chosen(primary.value);
    const partners = first ? styles.filter((s) => s.net === first.net && s.name !== first.name) : [];
    const kept = second.value;
    second.replaceChildren(...partners.map((s) => new Option(styleLabel(s), s.name)));
    if (partners.some((s) => s.name === kept)) {
      second.value = kept;
    }
    byId("blend-none").hidden = partners.length > 0;
  }

  function showMix() {
    const a = percent(Number(mix.value));
    byId("blend-mix-value").textContent = `${a} % / ${100 - a} %`;
  }

  function update() {
    const s = source();
    byId("style-trained").hidden = s === "painting";
    byId("style-select-label").textContent = s === "blend" ? "First style" : "Trained style";
    byId("style-blend").hidden = s !== "blend";
    byId("style-painting").hidden = s !== "painting";
    // The API paints a painting over the whole photo only (a mask goes with trained styles and blends).
    byId("region").hidden = s === "painting";
    byId("region-background-field").hidden = !subject.checked;
    fillSecond();
  }

  for (const radio of radios) {
    radio.addEventListener("change", update);
  }
  primary.addEventListener("change", fillSecond);
  subject.addEventListener("change", update);
  mix.addEventListener("input", showMix);
  showMix();
  update();

  return {
    // The styles of GET /v1/styles, each with its net: they fill the blend and background lists.
    setStyles(list) {
      styles = list;
      const kept = background.value;
      const options = list.map((s) => new Option(styleLabel(s), styleKey(s)));
      background.replaceChildren(new Option("The photo itself", ""), ...options);
      if (list.some((s) => styleKey(s) === kept)) {
        background.value = kept;
      }
      update();
    },

    // {params, files, what, slug} of the call, or throws Incomplete.
    choice() {
      const s = source();
      if (s === "painting") {
        const file = painting.files && painting.files[0];
        if (!file) {
          throw new Incomplete("Choose a painting file first.", painting);
        }
        const files = [["style_image", file, file.name || "painting"]];
        return { params: {}, files, what: `your painting ${file.name}`, slug: "painting" };
      }
      const first = chosen(primary.value);
      if (!first) {
        throw new Incomplete("No style to apply: the server lists none.", primary);
      }
      // model= names the net, so a name held by several nets is painted by the one chosen.
      const params = { model: first.net };
      let what;
      if (s === "blend") {
        if (!second.value) {
          throw new Incomplete(`${primary.value} has no style to blend with in its net.`, primary);
        }
        const a = Number(mix.value);
        params.blend = `${first.name}:${a.toFixed(2)},${second.value}:${(1 - a).toFixed(2)}`;
        what = `${percent(a)} % ${first.name} and ${100 - percent(a)} % ${second.value}`;
      } else {
        params.style = first.name;
        what = primary.value;
      }
      if (subject.checked) {
        params.mask = "saliency";
        const around = chosen(background.value);
        if (around && around.net === around.name) {
          params.background = around.name;
        } else if (around) {
          params.background_blend = `${around.name}:1`; // a one-style blend: the multi-style net's style
        }
        what += around ? ` on the subject, ${background.value} around it` : " on the subject";
      }
      return { params, files: [], what, slug: s === "blend" ? "blend" : first.name };
    },
  };
}
