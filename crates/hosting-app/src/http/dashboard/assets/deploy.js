// Deploy a folder from the browser with the digest protocol, like `hostctl deploy`:
// hash every file here (SHA-256), send the file list, upload only the files the server
// asks for, then publish. Requests carry the session cookie and the page's CSRF token
// in X-CSRF-Token (the API accepts a browser session only with it).
//
// Symbolic links: Chromium leaves them out of a picked folder without a word, and no
// browser says where a link points, so links cannot be followed or refused as hostctl
// does. Instead every file the browser listed but could not read is named after the
// deploy, and a result without index.html (the usual sign of a linked front page) ends
// with a warning rather than a plain "live".
"use strict";
(function () {
  const form = document.getElementById("deploy-form");
  if (!form) return;
  const site = form.dataset.site;
  const csrf = form.dataset.csrf;
  const liveUrl = form.dataset.url;
  const zone = document.getElementById("dropzone");
  const input = document.getElementById("folder");
  const status = document.getElementById("deploy-status");
  const progress = document.getElementById("deploy-progress");
  const CONCURRENCY = 4;

  function show(kind, text, link, notes) {
    status.textContent = "";
    const box = document.createElement("div");
    box.className = "notice " + kind;
    box.setAttribute("role", kind === "error" ? "alert" : "status");
    box.append(text);
    if (link) {
      box.append(" ");
      const a = document.createElement("a");
      a.href = link;
      a.id = "deployed-link";
      a.textContent = link;
      box.append(a);
    }
    if (notes && notes.length) {
      const list = document.createElement("ul");
      list.id = "deploy-skipped";
      for (const note of notes) {
        const item = document.createElement("li");
        item.textContent = note;
        list.append(item);
      }
      box.append(list);
    }
    status.append(box);
  }

  // `1.50 KiB`: IEC units with two decimals, as hostctl and the deploy history print them.
  function humanBytes(n) {
    const units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if (n < 1024) return `${n} B`;
    let value = n / 1024;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
    return `${value.toFixed(2)} ${units[unit]}`;
  }
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

  // Hidden files and folders are skipped, as hostctl does (but .well-known is kept).
  function wanted(path) {
    return path.split("/").every((part) => part && (!part.startsWith(".") || part === ".well-known"));
  }

  // --- SHA-256: WebCrypto where available (secure contexts), else a small fallback.
  const K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);
  function sha256Fallback(bytes) {
    const bitLen = bytes.length * 8;
    const padded = new Uint8Array(((bytes.length + 9 + 63) >> 6) << 6);
    padded.set(bytes);
    padded[bytes.length] = 0x80;
    const view = new DataView(padded.buffer);
    view.setUint32(padded.length - 8, Math.floor(bitLen / 0x100000000));
    view.setUint32(padded.length - 4, bitLen >>> 0);
    const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    const w = new Uint32Array(64);
    const rotr = (x, n) => (x >>> n) | (x << (32 - n));
    for (let off = 0; off < padded.length; off += 64) {
      for (let i = 0; i < 16; i++) w[i] = view.getUint32(off + i * 4);
      for (let i = 16; i < 64; i++) {
        const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
        const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
        w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
      }
      let [a, b, c, d, e, f, g, hh] = h;
      for (let i = 0; i < 64; i++) {
        const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
        const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
        hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
      }
      h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
    }
    return Array.from(h, (x) => x.toString(16).padStart(8, "0")).join("");
  }
  async function sha256(file) {
    const buffer = await file.arrayBuffer();
    if (window.crypto && crypto.subtle) {
      const digest = await crypto.subtle.digest("SHA-256", buffer);
      return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
    }
    return sha256Fallback(new Uint8Array(buffer));
  }

  // --- Collecting files: from the folder picker, or from a drop (folders walked).
  function fromPicker(fileList) {
    return Array.from(fileList, (file) => {
      const rel = file.webkitRelativePath || file.name;
      // The picked folder's own name is not part of the site.
      const path = rel.includes("/") ? rel.slice(rel.indexOf("/") + 1) : rel;
      return { path, file };
    });
  }
  function readAll(reader) {
    return new Promise((resolve, reject) => {
      const out = [];
      const next = () => reader.readEntries((batch) => {
        if (batch.length === 0) resolve(out);
        else { out.push(...batch); next(); }
      }, reject);
      next();
    });
  }
  // An entry the browser cannot open is kept with `error` set, so it can be listed.
  async function walk(entry, prefix, out) {
    if (entry.isFile) {
      try {
        const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
        out.push({ path: prefix + entry.name, file });
      } catch (error) {
        out.push({ path: prefix + entry.name, error: "the browser could not open it" });
      }
    } else if (entry.isDirectory) {
      for (const child of await readAll(entry.createReader())) {
        await walk(child, prefix + entry.name + "/", out);
      }
    } else {
      out.push({ path: prefix + entry.name, error: "neither a file nor a folder" });
    }
  }
  async function fromDrop(items) {
    const entries = Array.from(items, (item) => item.webkitGetAsEntry && item.webkitGetAsEntry()).filter(Boolean);
    const out = [];
    if (entries.length === 1 && entries[0].isDirectory) {
      // One folder dropped: its contents are the site.
      for (const child of await readAll(entries[0].createReader())) await walk(child, "", out);
    } else {
      for (const entry of entries) await walk(entry, "", out);
    }
    return out;
  }

  // --- The API calls.
  async function api(method, path, body, headers) {
    const response = await fetch("/api/v1" + path, {
      method,
      body,
      credentials: "same-origin",
      headers: Object.assign({ "X-CSRF-Token": csrf }, headers || {}),
    });
    if (!response.ok) {
      let detail = response.status + " " + response.statusText;
      try {
        const problem = await response.json();
        if (problem.detail) detail = problem.detail;
      } catch (_) { /* not JSON */ }
      throw new Error(detail);
    }
    return response.status === 204 ? null : response.json();
  }

  // --- Uploading what the server asked for, as hostctl does: uncompressed tars of
  // entries named by their digest (POST /deploys/{id}/files), cut by count and bytes, a
  // few in flight, a failed batch retried whole; a server without the route (404/405)
  // or one that finds a batch too large (413) gets one PUT per file instead.
  const BATCH_FILES = 1000;
  const BATCH_BYTES = 16 * 1024 * 1024;
  const IN_FLIGHT = 3;
  const ATTEMPTS = 3;

  // A ustar header: name, mode, owner, size, mtime, checksum, type, magic.
  function tarHeader(name, size) {
    const header = new Uint8Array(512);
    const put = (text, at) => { for (let i = 0; i < text.length; i++) header[at + i] = text.charCodeAt(i); };
    const octal = (n, width) => n.toString(8).padStart(width - 1, "0") + "\0";
    put(name, 0);
    put(octal(0o644, 8), 100);
    put(octal(0, 8), 108);
    put(octal(0, 8), 116);
    put(octal(size, 12), 124);
    put(octal(0, 12), 136);
    put("        ", 148); // the checksum counts its own field as spaces
    put("0", 156);
    put("ustar\u000000", 257);
    const sum = header.reduce((a, b) => a + b, 0);
    put(octal(sum, 7) + " ", 148);
    return header;
  }
  // The tar as a Blob of the files themselves: nothing is copied into memory here.
  function tarOf(batch) {
    const parts = [];
    for (const { hash, file } of batch) {
      parts.push(tarHeader(hash, file.size), file, new Uint8Array((512 - (file.size % 512)) % 512));
    }
    parts.push(new Uint8Array(1024));
    return new Blob(parts, { type: "application/x-tar" });
  }
  function batchesOf(files) {
    const out = [];
    let current = [];
    let size = 0;
    for (const item of files) {
      if (current.length && (current.length >= BATCH_FILES || size + item.file.size > BATCH_BYTES)) {
        out.push(current);
        current = [];
        size = 0;
      }
      current.push(item);
      size += item.file.size;
    }
    if (current.length) out.push(current);
    return out;
  }
  // One POST through XMLHttpRequest, whose upload events move the bar by bytes;
  // `onBytes` gets the file bytes sent so far (headers and padding spread over them).
  function postBatch(id, body, content, onBytes) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", `/api/v1/deploys/${id}/files`);
      xhr.setRequestHeader("X-CSRF-Token", csrf);
      xhr.setRequestHeader("Content-Type", "application/x-tar");
      xhr.upload.onprogress = (event) => onBytes(Math.round((content * event.loaded) / (event.total || body.size)));
      xhr.onload = () => resolve({ status: xhr.status, text: xhr.responseText });
      xhr.onerror = () => resolve({ status: 0, text: "" });
      xhr.send(body);
    });
  }
  function problemOf(answer) {
    try {
      const problem = JSON.parse(answer.text);
      if (problem.detail) return problem.detail;
    } catch (_) { /* not JSON */ }
    return answer.status ? `${answer.status}` : "the connection failed";
  }
  async function putEach(id, batch, counts, moved) {
    const queue = batch.slice();
    const worker = async () => {
      while (queue.length) {
        const { hash, file } = queue.shift();
        await api("PUT", `/deploys/${id}/files/${hash}`, file, { "Content-Type": "application/octet-stream" });
        counts.files++;
        counts.bytes += file.size;
        moved();
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, queue.length) }, worker));
  }
  async function sendBatch(id, batch, counts, moved) {
    const content = batch.reduce((sum, item) => sum + item.file.size, 0);
    const body = tarOf(batch);
    for (let attempt = 1; ; attempt++) {
      let shown = 0;
      const answer = await postBatch(id, body, content, (sent) => {
        counts.bytes += sent - shown;
        shown = sent;
        moved();
      });
      counts.bytes -= shown;
      if (answer.status === 204) {
        counts.bytes += content;
        counts.files += batch.length;
        moved();
        return;
      }
      if ([404, 405, 413].includes(answer.status)) return putEach(id, batch, counts, moved);
      const transient = answer.status === 0 || answer.status === 429 || answer.status >= 500;
      if (!transient || attempt >= ATTEMPTS) throw new Error(problemOf(answer));
      await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
    }
  }
  async function uploadRequired(id, files, counts, moved) {
    const queue = batchesOf(files);
    const worker = async () => {
      while (queue.length) await sendBatch(id, queue.shift(), counts, moved);
    };
    await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, queue.length) }, worker));
  }

  async function deploy(entries) {
    const files = entries.filter((e) => wanted(e.path));
    if (files.length === 0) {
      show("error", "No files to deploy (hidden files are skipped).");
      return;
    }
    zone.classList.add("busy");
    progress.hidden = false;
    progress.value = 0;
    try {
      const manifest = {};
      const byHash = new Map();
      // Files the browser listed but could not read (a broken or unfollowed link, no
      // permission): left out of the deploy and named in the result.
      const skipped = [];
      let hashed = 0;
      for (const { path, file, error } of files) {
        hashed++;
        progress.value = (hashed / files.length) * 20;
        show("ok", `Hashing files… ${hashed} / ${files.length}`);
        if (error) { skipped.push(`${path}: ${error}`); continue; }
        let hash;
        try {
          hash = await sha256(file);
        } catch (_) {
          skipped.push(`${path}: the browser could not read it`);
          continue;
        }
        manifest["/" + path] = hash;
        byHash.set(hash, file);
      }
      const deployed = Object.keys(manifest).length;
      if (deployed === 0) {
        show("error", "None of the files could be read; nothing was deployed.", null, skipped);
        return;
      }
      const key = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
      const created = await api("POST", `/sites/${encodeURIComponent(site)}/deploys`, JSON.stringify({ files: manifest }), {
        "Content-Type": "application/json",
        "Idempotency-Key": key,
      });
      const required = created.required;
      const bytes = required.reduce((sum, hash) => sum + byHash.get(hash).size, 0);
      const counts = { files: 0, bytes: 0 };
      const moved = () => {
        progress.value = 20 + (counts.bytes / (bytes || 1)) * 75;
        show("ok", `Uploading ${counts.files} / ${required.length} new files, ${humanBytes(counts.bytes)} of ${humanBytes(bytes)}…`);
      };
      await uploadRequired(created.id, required.map((hash) => ({ hash, file: byHash.get(hash) })), counts, moved);
      await api("POST", `/deploys/${created.id}/publish`);
      progress.value = 100;
      const uploaded = Object.values(manifest).filter((hash) => required.includes(hash)).length;
      const summary = `Deployed ${plural(deployed, "file")} (${uploaded} uploaded, ${deployed - uploaded} unchanged).`;
      const notes = skipped.slice();
      if (!("/index.html" in manifest)) notes.push("There is no index.html: the site's front page answers 404.");
      if (skipped.length) {
        show("warn", `${summary} ${plural(skipped.length, "file")} could not be read and ${skipped.length === 1 ? "was" : "were"} left out. Live at`, liveUrl, notes);
      } else {
        show(notes.length ? "warn" : "ok", `${summary} Live at`, liveUrl, notes);
      }
      await refresh();
    } catch (error) {
      show("error", "The deploy failed: " + error.message);
    } finally {
      zone.classList.remove("busy");
      input.value = "";
    }
  }

  // The live card and the history are re-read from the page, so they match the server.
  async function refresh() {
    const response = await fetch(location.pathname, { credentials: "same-origin" });
    if (!response.ok) return;
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const id of ["site-heading", "live", "history"]) {
      const fresh = doc.getElementById(id);
      const old = document.getElementById(id);
      if (fresh && old) old.replaceWith(fresh);
    }
  }

  input.addEventListener("change", () => deploy(fromPicker(input.files)));
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", async (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    const items = event.dataTransfer.items;
    const entries = items && items.length && items[0].webkitGetAsEntry
      ? await fromDrop(items)
      : fromPicker(event.dataTransfer.files);
    deploy(entries);
  });
})();
