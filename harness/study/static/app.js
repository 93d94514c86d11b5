// llbench study client: pairwise (2AFC) and rating trials, zoom and pan, progress and time.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const state = {
    study: null, participant: null, trial: null, busy: true,
    elapsedBase: 0, shownAt: performance.now(), view: { s: 1, x: 0, y: 0 },
  };
  const storageKey = () => `llbench-study:${state.study ? state.study.name : ""}`;

  async function api(method, url, body) {
    const opts = { method, cache: "no-store", headers: {} };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const res = await fetch(url, opts);
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok) throw new Error((data && data.error) || `request failed (${res.status})`);
    return data;
  }

  function say(text) { $("message").textContent = text || ""; }

  function fmt(sec) {
    sec = Math.max(0, Math.floor(sec));
    const h = Math.floor(sec / 3600), m = Math.floor((sec % 3600) / 60), s = sec % 60;
    const mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? `${h}:` : "") + `${mm}:${String(s).padStart(2, "0")}`;
  }

  function tick() {
    if (!state.participant) return;
    let t = state.elapsedBase;
    if (state.trial && !state.trial.done && !state.busy) t += (performance.now() - state.shownAt) / 1000;
    $("elapsed").textContent = fmt(t);
  }
  setInterval(tick, 1000);

  function show(section) {
    for (const id of ["login", "pair", "rate", "done"]) $(id).hidden = id !== section;
  }

  function setBusy(busy) {
    state.busy = busy;
    document.body.dataset.state = busy ? "busy" : "ready";
    for (const b of document.querySelectorAll("button.choose")) b.disabled = busy;
  }

  function setProgress(answered, total) {
    const bar = $("progress");
    bar.max = Math.max(total, 1);
    bar.value = answered;
    $("progress-text").textContent = answered >= total
      ? `${total} / ${total} done`
      : `${state.study.kind === "pairwise" ? "Pair" : "Image"} ${answered + 1} / ${total}`;
  }

  // -- zoom and pan (the same view on both images) --------------------------------------
  function images() {
    return state.study && state.study.kind === "rating"
      ? [$("img-single")] : [$("img-left"), $("img-right")];
  }

  function applyView() {
    const v = state.view;
    for (const img of images()) img.style.transform = `translate(${v.x}px, ${v.y}px) scale(${v.s})`;
  }

  function clampView(vp) {
    const v = state.view, w = vp.clientWidth, h = vp.clientHeight;
    v.x = Math.min(0, Math.max(w * (1 - v.s), v.x));
    v.y = Math.min(0, Math.max(h * (1 - v.s), v.y));
  }

  function zoomAt(vp, cx, cy, factor) {
    const v = state.view, s = Math.min(16, Math.max(1, v.s * factor));
    v.x = cx - ((cx - v.x) * s) / v.s;
    v.y = cy - ((cy - v.y) * s) / v.s;
    v.s = s;
    clampView(vp);
    applyView();
  }

  function resetView() { state.view = { s: 1, x: 0, y: 0 }; applyView(); }

  function visibleViewport() {
    return document.querySelector(state.study.kind === "rating" ? "#rate .viewport" : "#pair .viewport");
  }

  for (const vp of document.querySelectorAll(".viewport")) {
    vp.addEventListener("wheel", (e) => {
      e.preventDefault();
      const r = vp.getBoundingClientRect();
      zoomAt(vp, e.clientX - r.left, e.clientY - r.top, Math.exp(-e.deltaY * 0.002));
    }, { passive: false });
    let drag = null;
    vp.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      drag = { px: e.clientX, py: e.clientY, x: state.view.x, y: state.view.y, moved: false };
      vp.setPointerCapture(e.pointerId);
    });
    vp.addEventListener("pointermove", (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.px, dy = e.clientY - drag.py;
      if (!drag.moved && Math.hypot(dx, dy) < 5) return;
      drag.moved = true;
      vp.classList.add("dragging");
      state.view.x = drag.x + dx;
      state.view.y = drag.y + dy;
      clampView(vp);
      applyView();
    });
    const end = (e, cancelled) => {
      if (!drag) return;
      const clicked = !drag.moved && !cancelled;
      drag = null;
      vp.classList.remove("dragging");
      if (clicked && state.study.kind === "pairwise") choose(vp.dataset.side);
    };
    vp.addEventListener("pointerup", (e) => end(e, false));
    vp.addEventListener("pointercancel", (e) => end(e, true));
  }

  // -- trials -----------------------------------------------------------------------------
  function loadImage(img, url) {
    return new Promise((resolve) => {
      if (img.getAttribute("src") === url && img.complete) { resolve(); return; }
      img.onload = img.onerror = () => resolve();
      img.src = url;
    });
  }

  function render(t) {
    state.trial = t;
    state.elapsedBase = t.elapsed;
    setProgress(t.answered, t.total);
    if (t.done) {
      setBusy(true);
      document.body.dataset.state = "done";
      show("done");
      tick();
      return;
    }
    setBusy(true);
    resetView();
    show(state.study.kind === "pairwise" ? "pair" : "rate");
    Promise.all(images().map((img, k) => loadImage(img, t.images[k]))).then(() => {
      if (state.trial !== t) return;
      state.shownAt = performance.now();
      document.body.dataset.item = t.item;
      setBusy(false);
      tick();
    });
  }

  async function send(payload) {
    if (state.busy || !state.trial || state.trial.done) return;
    setBusy(true);
    say("");
    try {
      const r = await api("POST", "/api/answer",
        { participant: state.participant, item: state.trial.item, ...payload });
      render(r.next);
    } catch (e) {
      say(`${e.message}. Please try again.`);
      setBusy(false);
    }
  }

  function choose(side) { if (side === "left" || side === "right") send({ choice: side }); }
  function rate(value) { send({ rating: value }); }

  for (const b of document.querySelectorAll("button.choose")) {
    if (b.dataset.side) b.addEventListener("click", () => choose(b.dataset.side));
  }

  document.addEventListener("keydown", (e) => {
    if (!state.study || !state.participant || e.target instanceof HTMLInputElement) return;
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const vp = visibleViewport();
    if (e.key === "0") { resetView(); e.preventDefault(); return; }
    if (e.key === "+" || e.key === "=") { zoomAt(vp, vp.clientWidth / 2, vp.clientHeight / 2, 1.25); return; }
    if (e.key === "-") { zoomAt(vp, vp.clientWidth / 2, vp.clientHeight / 2, 0.8); return; }
    if (e.repeat) return;
    if (state.study.kind === "pairwise") {
      if (e.key === "ArrowLeft" || e.key === "a" || e.key === "A") { e.preventDefault(); choose("left"); }
      if (e.key === "ArrowRight" || e.key === "b" || e.key === "B") { e.preventDefault(); choose("right"); }
    } else if (/^[0-9]$/.test(e.key)) {
      const v = Number(e.key);
      if (state.study.scale.some((s) => s.value === v)) { e.preventDefault(); rate(v); }
    }
  });

  async function start(pid) {
    say("");
    try {
      const s = await api("POST", "/api/session", { participant: pid });
      state.participant = s.participant;
      state.elapsedBase = s.elapsed;
      sessionStorage.setItem(storageKey(), s.participant);
      render(await api("GET", `/api/next?participant=${encodeURIComponent(s.participant)}`));
    } catch (e) {
      state.participant = null;
      sessionStorage.removeItem(storageKey());
      show("login");
      say(e.message);
    }
  }

  async function init() {
    try {
      state.study = await api("GET", "/api/study");
    } catch (e) {
      say(`Cannot reach the study server: ${e.message}`);
      return;
    }
    document.title = state.study.title;
    $("title").textContent = state.study.title;
    $("instructions").textContent = state.study.instructions;
    $("progress-text").textContent = `${state.study.items} ${state.study.kind === "pairwise" ? "pairs" : "images"}`;
    if (state.study.kind === "rating") {
      for (const s of state.study.scale) {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "choose";
        b.dataset.value = String(s.value);
        b.textContent = `${s.value} ${s.label === String(s.value) ? "" : s.label}`.trim();
        b.setAttribute("aria-keyshortcuts", String(s.value));
        b.addEventListener("click", () => rate(s.value));
        $("scale").appendChild(b);
      }
    }
    $("login-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const pid = $("participant").value.trim();
      if (pid) start(pid);
    });
    const fromUrl = new URLSearchParams(location.search).get("participant");
    const saved = fromUrl || sessionStorage.getItem(storageKey());
    document.body.dataset.state = "login";
    if (saved) start(saved);
    else { show("login"); $("participant").focus(); }
  }

  init();
})();
