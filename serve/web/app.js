// The jmedseg page: choose a model, drop an image or a NIfTI volume, look at
// the predicted mask over it, download the mask; with --runs, read the
// training reports. Plain JavaScript, talking to the server's API only.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);

  // The overlay's colours, class 1 on; the same as serve.Palette.
  const palette = ['#ff3030', '#30c840', '#4080ff', '#ffc800', '#e640e6', '#00d2d2', '#ff8000', '#a060ff', '#8cff8c'];

  // What the page shows; window.jmedseg for tests and the console.
  const state = {
    models: [], kind: '', file: '', w: 0, h: 0,
    base: null,    // 2D: RGBA bytes of the image as the model read it
    mask: null,    // 2D: class id per pixel
    vol: null,     // volume: the input, parsed
    labels: null,  // volume: the label volume, parsed
    slice: 0, colours: [], names: [], spacing: null, api: null, maskURL: '',
    pixels: [],    // pixels of each class in the view (this slice of a volume)
  };
  window.jmedseg = state;

  const token = () => sessionStorage.getItem('jmedseg-token') || '';
  const headers = (h = {}) => (token() ? { ...h, Authorization: 'Bearer ' + token() } : h);

  // api fetches an API path, throwing the server's error message.
  async function api(path, opts = {}) {
    const r = await fetch(path, { ...opts, headers: headers(opts.headers) });
    if (!r.ok) {
      let msg = r.statusText;
      try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
      const err = new Error(`${r.status}: ${msg}`);
      err.status = r.status;
      throw err;
    }
    return r;
  }

  function setStatus(text, kind) {
    $('status').textContent = text;
    document.body.dataset.state = kind;
  }

  const fmt = (n, digits = 0) => Number(n).toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

  // ---- start ----

  async function start() {
    $('token').value = token();
    $('token').addEventListener('change', () => {
      sessionStorage.setItem('jmedseg-token', $('token').value.trim());
      loadModels();
    });
    $('tab-predict').addEventListener('click', () => showTab('predict'));
    $('tab-runs').addEventListener('click', () => { showTab('runs'); loadRuns(); });
    const drop = $('drop');
    drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', (e) => {
      e.preventDefault();
      drop.classList.remove('over');
      if (e.dataTransfer.files.length) handleFile(e.dataTransfer.files[0]);
    });
    $('file').addEventListener('change', () => { if ($('file').files.length) handleFile($('file').files[0]); });
    $('opacity').addEventListener('input', () => { $('opacity-out').textContent = $('opacity').value + ' %'; render(); });
    $('slice').addEventListener('input', () => { state.slice = Number($('slice').value); render(); legend(); });
    $('model').addEventListener('change', describeModel);
    try {
      const health = await (await fetch('/healthz')).json();
      $('token-box').hidden = !health.auth;
      $('tab-runs').hidden = !health.runs;
    } catch (e) {
      setStatus('The server does not answer: ' + e.message, 'error');
      return;
    }
    await loadModels();
  }

  async function loadModels() {
    try {
      state.models = await (await api('/v1/models')).json();
    } catch (e) {
      setStatus(e.status === 401 ? 'Enter the server\'s token (its --token-file) above.' : 'Listing the models: ' + e.message, 'error');
      return;
    }
    const sel = $('model');
    sel.replaceChildren(...state.models.map((m) => new Option(m.name, m.name)));
    describeModel();
    setStatus('Drop an image or a volume to segment it.', 'ready');
  }

  function currentModel() { return state.models.find((m) => m.name === $('model').value); }

  function describeModel() {
    const m = currentModel();
    if (!m) return;
    $('model-info').textContent = `${m.model}, ${fmt(m.parameters)} parameters, ${m.in_channels}-channel ${m.input_size[0]}×${m.input_size[1]} input; classes: ${m.classes.join(', ')}`;
  }

  function showTab(which) {
    $('predict-panel').hidden = which !== 'predict';
    $('runs-panel').hidden = which !== 'runs';
    $('tab-predict').classList.toggle('active', which === 'predict');
    $('tab-runs').classList.toggle('active', which === 'runs');
  }

  // ---- prediction ----

  const isGzip = (u8) => u8.length > 2 && u8[0] === 0x1f && u8[1] === 0x8b;
  function looksNIfTI(name, u8) {
    if (/\.nii(\.gz)?$/i.test(name)) return true;
    if (u8.length < 348) return isGzip(u8) && /\.gz$/i.test(name);
    const dv = new DataView(u8.buffer, u8.byteOffset);
    return dv.getInt32(0, true) === 348 || dv.getInt32(0, false) === 348;
  }

  async function handleFile(file) {
    const m = currentModel();
    if (!m) { setStatus('No model to predict with.', 'error'); return; }
    $('view').dataset.ready = '0';
    setStatus(`Predicting ${file.name} with ${m.name}…`, 'busy');
    try {
      const buf = await file.arrayBuffer();
      const u8 = new Uint8Array(buf);
      state.file = file.name;
      state.names = m.classes;
      state.colours = m.classes.map((_, c) => (c === 0 ? null : palette[(c - 1) % palette.length]));
      const url = `/v1/models/${encodeURIComponent(m.name)}/predict`;
      if (looksNIfTI(file.name, u8)) {
        const r = await api(url + '?format=nifti', { method: 'POST', body: buf, headers: { 'Content-Type': 'application/x-nifti' } });
        const out = await r.arrayBuffer();
        state.kind = 'volume';
        state.vol = await parseNIfTI(buf);
        state.labels = await parseNIfTI(out);
        const v = state.vol;
        if (v.nx !== state.labels.nx || v.ny !== state.labels.ny || v.nz !== state.labels.nz) throw new Error('the label volume is not on the input\'s grid');
        state.w = v.nx; state.h = v.ny;
        state.spacing = [v.spacing[0], v.spacing[1]];
        window_(v);
        state.slice = Math.floor(v.nz / 2);
        $('slice').max = String(v.nz - 1);
        $('slice').value = String(state.slice);
        $('slice-box').hidden = v.nz < 2;
        setDownload(new Blob([out], { type: 'application/octet-stream' }), stem(file.name) + '_mask.nii' + (isGzip(new Uint8Array(out)) ? '.gz' : ''));
        $('file-info').textContent = `${file.name}: ${v.nx}×${v.ny}×${v.nz} voxels of ${v.spacing.map((s) => fmt(s, 2)).join('×')} mm`;
      } else {
        const r = await api(url + '?format=json&image=1', { method: 'POST', body: buf, headers: { 'Content-Type': file.type || 'application/octet-stream' } });
        const res = await r.json();
        state.kind = '2d';
        state.api = res;
        state.w = res.width; state.h = res.height;
        state.spacing = res.pixel_spacing_mm;
        state.base = (await decodePNG(res.image_png, res.width, res.height)).data;
        const maskRGBA = (await decodePNG(res.mask_png, res.width, res.height)).data;
        state.mask = new Int32Array(res.width * res.height);
        for (let i = 0; i < state.mask.length; i++) state.mask[i] = maskRGBA[4 * i]; // grey level = class id
        $('slice-box').hidden = true;
        setDownload(b64Blob(res.mask_png, 'image/png'), stem(file.name) + '_mask.png');
        const sp = res.pixel_spacing_mm ? `${res.pixel_spacing_mm.map((s) => fmt(s, 3)).join('×')} mm pixels (${res.spacing_from === 'dicom' ? 'from the file' : 'the model\'s data set'})` : 'pixel spacing unknown';
        $('file-info').textContent = `${file.name}: ${res.width}×${res.height}, ${sp}`;
      }
      $('result').hidden = false;
      render();
      legend();
      $('view').dataset.ready = '1';
      setStatus(`${file.name}: predicted by ${m.name}.`, 'done');
    } catch (e) {
      setStatus(`${file.name}: ${e.message}`, 'error');
    }
  }

  const stem = (name) => name.replace(/(\.nii\.gz|\.[^.]*)$/i, '');

  function setDownload(blob, name) {
    if (state.maskURL) URL.revokeObjectURL(state.maskURL);
    state.maskURL = URL.createObjectURL(blob);
    $('download').href = state.maskURL;
    $('download').download = name;
  }

  function b64Blob(b64, type) {
    const bin = atob(b64);
    const u8 = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) u8[i] = bin.charCodeAt(i);
    return new Blob([u8], { type });
  }

  // decodePNG decodes a base64 PNG to RGBA bytes, exactly: no colour
  // management, no premultiplication.
  async function decodePNG(b64, w, h) {
    const bmp = await createImageBitmap(b64Blob(b64, 'image/png'), { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
    if (bmp.width !== w || bmp.height !== h) throw new Error(`a ${bmp.width}×${bmp.height} PNG for a ${w}×${h} image`);
    const c = document.createElement('canvas');
    c.width = w; c.height = h;
    const ctx = c.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(bmp, 0, 0);
    return ctx.getImageData(0, 0, w, h);
  }

  // parseNIfTI reads a NIfTI-1 file (gzipped or not) into voxels x fastest.
  async function parseNIfTI(buf) {
    if (isGzip(new Uint8Array(buf))) {
      const s = new Blob([buf]).stream().pipeThrough(new DecompressionStream('gzip'));
      buf = await new Response(s).arrayBuffer();
    }
    const dv = new DataView(buf);
    let le = true;
    if (dv.getInt32(0, true) !== 348) {
      if (dv.getInt32(0, false) !== 348) throw new Error('not a NIfTI-1 file');
      le = false;
    }
    const ndim = dv.getInt16(40, le);
    const dim = [1, 2, 3].map((i) => (i <= ndim ? Math.max(1, dv.getInt16(40 + 2 * i, le)) : 1));
    const dt = dv.getInt16(70, le);
    const spacing = [1, 2, 3].map((i) => Math.abs(dv.getFloat32(76 + 4 * i, le)) || 1);
    let off = Math.round(dv.getFloat32(108, le));
    if (off < 348) off = 352;
    let slope = dv.getFloat32(112, le);
    const inter = dv.getFloat32(116, le);
    if (!slope || !isFinite(slope)) slope = 1;
    const [nx, ny, nz] = dim;
    const n = nx * ny * nz;
    const readers = {
      2: [1, (o) => dv.getUint8(o)], 4: [2, (o) => dv.getInt16(o, le)], 8: [4, (o) => dv.getInt32(o, le)],
      16: [4, (o) => dv.getFloat32(o, le)], 64: [8, (o) => dv.getFloat64(o, le)], 256: [1, (o) => dv.getInt8(o)],
      512: [2, (o) => dv.getUint16(o, le)], 768: [4, (o) => dv.getUint32(o, le)],
    };
    if (!readers[dt]) throw new Error(`NIfTI datatype ${dt} is not shown by this page`);
    const [size, read] = readers[dt];
    if (off + n * size > buf.byteLength) throw new Error('the NIfTI file is shorter than its header says');
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const v = read(off + i * size);
      data[i] = Number.isFinite(v) ? v * slope + inter : NaN;
    }
    return { nx, ny, nz, spacing, data };
  }

  // window_ sets a volume's display range: its 0.5 and 99.5 percentiles.
  function window_(v) {
    const step = Math.max(1, Math.floor(v.data.length / 200000));
    const sample = [];
    for (let i = 0; i < v.data.length; i += step) if (!Number.isNaN(v.data[i])) sample.push(v.data[i]);
    sample.sort((a, b) => a - b);
    v.lo = sample[Math.round(0.005 * (sample.length - 1))] || 0;
    v.hi = sample[Math.round(0.995 * (sample.length - 1))] || 1;
    if (v.hi <= v.lo) v.hi = v.lo + 1;
  }

  const rgb = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));

  // viewPixels returns the view's labels and image pixels: the 2D image, or
  // a volume's slice with its second axis up.
  function viewPixels() {
    const { w, h } = state;
    const labels = new Int32Array(w * h);
    const rgba = new Uint8ClampedArray(w * h * 4);
    if (state.kind === '2d') {
      labels.set(state.mask);
      rgba.set(state.base);
    } else {
      const v = state.vol, L = state.labels, k = state.slice;
      for (let y = 0; y < h; y++) {
        const j = h - 1 - y;
        for (let x = 0; x < w; x++) {
          const i = x + w * (j + h * k);
          const g = Number.isNaN(v.data[i]) ? 0 : Math.max(0, Math.min(255, (255 * (v.data[i] - v.lo)) / (v.hi - v.lo)));
          const p = 4 * (x + w * y);
          rgba[p] = rgba[p + 1] = rgba[p + 2] = g;
          rgba[p + 3] = 255;
          labels[x + w * y] = L.data[i];
        }
      }
    }
    return { labels, rgba };
  }

  // render draws the view: the image, each class > 0 blended with its colour.
  function render() {
    if (!state.kind) return;
    const { w, h } = state;
    const { labels, rgba } = viewPixels();
    const a = Number($('opacity').value) / 100;
    const cols = state.colours.map((c) => (c ? rgb(c) : null));
    const counts = new Array(state.names.length).fill(0);
    for (let i = 0; i < labels.length; i++) {
      const l = labels[i];
      if (l >= 0 && l < counts.length) counts[l]++;
      const c = cols[l];
      if (!c) continue;
      const p = 4 * i;
      rgba[p] = rgba[p] * (1 - a) + c[0] * a;
      rgba[p + 1] = rgba[p + 1] * (1 - a) + c[1] * a;
      rgba[p + 2] = rgba[p + 2] * (1 - a) + c[2] * a;
      rgba[p + 3] = 255;
    }
    state.pixels = counts;
    const cv = $('view');
    cv.width = w; cv.height = h;
    cv.getContext('2d').putImageData(new ImageData(rgba, w, h), 0, 0);
  }

  // legend lists the classes: colour (changeable), name, pixels, area.
  function legend() {
    const body = $('legend').tBodies[0];
    const sp = state.spacing;
    $('area-head').textContent = 'area mm²';
    const rows = state.names.map((name, c) => {
      const tr = document.createElement('tr');
      const tdC = document.createElement('td');
      if (c > 0) {
        const inp = document.createElement('input');
        inp.type = 'color';
        inp.value = state.colours[c];
        inp.title = `colour of ${name}`;
        inp.addEventListener('input', () => { state.colours[c] = inp.value; render(); });
        tdC.append(inp);
      } else {
        tdC.textContent = '—';
      }
      const tdN = document.createElement('td');
      tdN.textContent = name;
      const n = state.pixels[c] || 0;
      const tdP = document.createElement('td');
      tdP.className = 'num pixels';
      tdP.dataset.class = String(c);
      tdP.dataset.pixels = String(n);
      tdP.textContent = fmt(n);
      const tdA = document.createElement('td');
      tdA.className = 'num area';
      tdA.textContent = sp ? fmt(n * sp[0] * sp[1], 1) : '—';
      tr.append(tdC, tdN, tdP, tdA);
      return tr;
    });
    body.replaceChildren(...rows);
    if (state.kind === 'volume') {
      const L = state.labels, v = state.vol;
      const tot = new Array(state.names.length).fill(0);
      for (const l of L.data) if (l >= 0 && l < tot.length) tot[l]++;
      const vox = v.spacing[0] * v.spacing[1] * v.spacing[2];
      $('totals').textContent = `Slice ${state.slice + 1} of ${v.nz}. Whole volume: ` +
        state.names.map((n, c) => `${n} ${fmt(tot[c])} voxels (${fmt((tot[c] * vox) / 1000, 1)} ml)`).join(', ');
      $('slice-out').textContent = `${state.slice + 1} / ${v.nz}`;
    } else {
      $('totals').textContent = '';
    }
  }

  // ---- runs ----

  async function loadRuns() {
    let runs;
    try {
      runs = await (await api('/v1/runs')).json();
    } catch (e) {
      $('report').textContent = 'Listing the runs: ' + e.message;
      return;
    }
    const list = $('runs');
    if (!runs.length) {
      list.replaceChildren();
      $('report').textContent = 'No runs (directories with a report.md or report.json) in the server\'s --runs directory.';
      return;
    }
    list.replaceChildren(...runs.map((r) => {
      const li = document.createElement('li');
      const b = document.createElement('button');
      b.type = 'button';
      b.dataset.run = r.name;
      b.append(r.title || r.name);
      const small = document.createElement('small');
      small.textContent = r.headline || r.name;
      b.append(small);
      b.addEventListener('click', () => {
        list.querySelectorAll('button').forEach((x) => x.classList.toggle('active', x === b));
        showReport(r);
      });
      li.append(b);
      return li;
    }));
  }

  async function showReport(run) {
    const base = `/v1/runs/${encodeURIComponent(run.name)}/files/`;
    const art = $('report');
    art.textContent = 'Loading…';
    try {
      if (run.report_md) {
        const md = await (await api(base + 'report.md')).text();
        art.innerHTML = markdown(md, base);
        for (const img of art.querySelectorAll('img[data-src]')) {
          api(img.dataset.src).then((r) => r.blob()).then((b) => { img.src = URL.createObjectURL(b); }).catch((e) => { img.alt += ` (${e.message})`; });
        }
        for (const a of art.querySelectorAll('a[data-file]')) {
          a.addEventListener('click', async (e) => {
            e.preventDefault();
            const b = await (await api(a.dataset.file)).blob();
            window.open(URL.createObjectURL(b), '_blank');
          });
        }
      } else {
        const rep = await (await api(base + 'report.json')).json();
        art.replaceChildren();
        const h = document.createElement('h2');
        h.textContent = rep.title || run.name;
        const pre = document.createElement('pre');
        pre.textContent = JSON.stringify(rep, null, 2);
        art.append(h, pre);
      }
    } catch (e) {
      art.textContent = `${run.name}: ${e.message}`;
    }
  }

  const esc = (s) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));

  // A report's relative link or image, as an API path; null for anything
  // else but http(s) links.
  function resolve(href, base) {
    if (/^https?:\/\//i.test(href)) return { external: href };
    if (/^[a-z][a-z0-9+.-]*:/i.test(href) || href.startsWith('/') || href.startsWith('#')) return null;
    const parts = [];
    for (const p of href.split('/')) {
      if (p === '..') { if (!parts.length) return null; parts.pop(); } else if (p && p !== '.') parts.push(encodeURIComponent(decodeURIComponentSafe(p)));
    }
    return { file: base + parts.join('/') };
  }

  function decodeURIComponentSafe(s) { try { return decodeURIComponent(s); } catch (e) { return s; } }

  // inline renders a line's code, images, links, bold and italics; every
  // other character is escaped.
  function inline(s, base) {
    const out = [];
    const re = /`([^`]+)`|!\[([^\]]*)\]\(([^)\s]+)\)|\[([^\]]+)\]\(([^)\s]+)\)|\*\*([^*]+)\*\*|\*([^*\s][^*]*)\*/g;
    let last = 0;
    for (let m; (m = re.exec(s));) {
      out.push(esc(s.slice(last, m.index)));
      last = re.lastIndex;
      if (m[1] !== undefined) out.push(`<code>${esc(m[1])}</code>`);
      else if (m[3] !== undefined) {
        const r = resolve(m[3], base);
        out.push(r && r.file ? `<img alt="${esc(m[2])}" data-src="${esc(r.file)}">` : esc(m[2]));
      } else if (m[5] !== undefined) {
        const r = resolve(m[5], base);
        if (r && r.file) out.push(`<a href="#" data-file="${esc(r.file)}">${inline(m[4], base)}</a>`);
        else if (r && r.external) out.push(`<a href="${esc(r.external)}" rel="noreferrer noopener" target="_blank">${inline(m[4], base)}</a>`);
        else out.push(inline(m[4], base));
      } else if (m[6] !== undefined) out.push(`<strong>${inline(m[6], base)}</strong>`);
      else out.push(`<em>${inline(m[7], base)}</em>`);
    }
    out.push(esc(s.slice(last)));
    return out.join('');
  }

  const cells = (line) => line.trim().replace(/^\|/, '').replace(/\|$/, '').split('|').map((c) => c.trim());

  // markdown renders the Markdown reports are written in: headings,
  // paragraphs, tables, fenced code, images and links, <details> blocks.
  function markdown(md, base) {
    const lines = md.split('\n');
    const html = [];
    let para = [];
    const flush = () => { if (para.length) html.push(`<p>${inline(para.join(' '), base)}</p>`); para = []; };
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      let m;
      if (line.startsWith('```')) {
        flush();
        const code = [];
        for (i++; i < lines.length && !lines[i].startsWith('```'); i++) code.push(lines[i]);
        html.push(`<pre><code>${esc(code.join('\n'))}</code></pre>`);
      } else if ((m = /^(#{1,6})\s+(.*)$/.exec(line))) {
        flush();
        html.push(`<h${m[1].length}>${inline(m[2], base)}</h${m[1].length}>`);
      } else if (line.trim().startsWith('|') && i + 1 < lines.length && /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/.test(lines[i + 1])) {
        flush();
        const head = cells(line);
        const align = cells(lines[i + 1]).map((c) => (c.endsWith(':') ? (c.startsWith(':') ? 'center' : 'right') : 'left'));
        // Cells align through classes: the page's CSP allows no inline style.
        const row = (cs, tag) => '<tr>' + cs.map((c, k) => `<${tag} class="al-${align[k] || 'left'}">${inline(c, base)}</${tag}>`).join('') + '</tr>';
        const body = [];
        for (i += 2; i < lines.length && lines[i].trim().startsWith('|'); i++) body.push(row(cells(lines[i]), 'td'));
        i--;
        html.push(`<table><thead>${row(head, 'th')}</thead><tbody>${body.join('')}</tbody></table>`);
      } else if ((m = /^<details>\s*(?:<summary>(.*)<\/summary>)?\s*$/.exec(line.trim()))) {
        flush();
        html.push('<details>' + (m[1] !== undefined ? `<summary>${inline(m[1], base)}</summary>` : ''));
      } else if (line.trim() === '</details>') {
        flush();
        html.push('</details>');
      } else if (!line.trim()) {
        flush();
      } else {
        para.push(line.trim());
      }
    }
    flush();
    return html.join('\n');
  }

  start();
})();
