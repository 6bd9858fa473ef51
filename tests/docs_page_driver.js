// Drives the docs page as a person does: open an operation, "Try it out", type into its fields,
// Execute, read the answer shown. Used by tests/test_docs_page.py through the DevTools protocol.
window.__dt = (() => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const waitFor = async (f, ms = 20000) => {
    const end = Date.now() + ms;
    while (Date.now() < end) { const v = f(); if (v) return v; await sleep(100); }
    throw new Error('timed out');
  };
  const type = (el, text) => {
    const proto = el.tagName === 'TEXTAREA' ? HTMLTextAreaElement.prototype
      : el.tagName === 'SELECT' ? HTMLSelectElement.prototype : HTMLInputElement.prototype;
    Object.getOwnPropertyDescriptor(proto, 'value').set.call(el, text);
    el.dispatchEvent(new Event('input', { bubbles: true }));
    el.dispatchEvent(new Event('change', { bubbles: true }));
  };
  const tryIt = async (method, path, values) => {
    const block = [...document.querySelectorAll('.opblock-' + method.toLowerCase())]
      .find(b => b.querySelector('[data-path="' + path + '"]'));
    if (!block.classList.contains('is-open')) block.querySelector('.opblock-summary-control').click();
    const button = await waitFor(() => block.querySelector('.try-out__btn'));
    if (!button.classList.contains('cancel')) button.click();
    await waitFor(() => block.querySelector('.execute'));
    for (const [name, text] of Object.entries(values)) {
      type(await waitFor(() => block.querySelector('input[placeholder="' + name + '"]')), text);
    }
    await sleep(800);  // Swagger UI's fields are debounced
    block.querySelector('.btn-clear')?.click();
    await sleep(100);
    block.querySelector('.execute').click();
    const pre = await waitFor(() => block.querySelector('.live-responses-table .response-col_description pre'));
    const url = block.querySelector('.request-url pre')?.textContent || '';
    return { body: JSON.parse(pre.textContent), url: url };
  };
  return { tryIt, type, waitFor };
})();
true
