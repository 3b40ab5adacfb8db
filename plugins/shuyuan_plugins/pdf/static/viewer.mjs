// In-page PDF viewer on pdfjs-dist; reports through window.Shuyuan (shuyuan-player.js).
for (const box of document.querySelectorAll(".pdf-viewer")) {
  const pdfjs = await import(box.dataset.lib);
  pdfjs.GlobalWorkerOptions.workerSrc = box.dataset.worker;
  const rid = box.dataset.resource;
  const canvas = box.querySelector(".pdf-canvas");
  const label = box.querySelector(".pdf-page");
  const doc = await pdfjs.getDocument({url: box.dataset.src, withCredentials: true}).promise;
  let page = 1, furthest = 1, done = false;
  const report = (verb, extra) => window.Shuyuan && window.Shuyuan.report(rid, verb, extra);
  async function show(n) {
    page = Math.min(Math.max(1, n), doc.numPages);
    const p = await doc.getPage(page);
    const width = Math.min(box.clientWidth || 800, 1200);
    const viewport = p.getViewport({scale: width / p.getViewport({scale: 1}).width});
    canvas.width = viewport.width; canvas.height = viewport.height;
    await p.render({canvasContext: canvas.getContext("2d"), viewport}).promise;
    label.textContent = page + " / " + doc.numPages;
    box.dataset.rendered = String(page);
    if (page > furthest) {
      furthest = page;
      report("progressed", {result: {progress: furthest / doc.numPages, page: page}});
    }
    if (page === doc.numPages && !done) {
      done = true;
      report("completed", {result: {progress: 1, pages: doc.numPages}});
    }
  }
  box.querySelector(".pdf-prev").addEventListener("click", () => show(page - 1));
  box.querySelector(".pdf-next").addEventListener("click", () => show(page + 1));
  report("opened", {result: {progress: doc.numPages ? 1 / doc.numPages : 0}, context: {pages: doc.numPages}});
  await show(1);
}
