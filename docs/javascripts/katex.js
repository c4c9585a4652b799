// Render the math that pymdownx.arithmatex (generic mode) writes as \( \) and \[ \] inside
// class="arithmatex" elements, with the vendored KaTeX, on every page load (Material's instant
// navigation included). Dollar signs are not delimiters, so "$HOME" in prose is never math.
document$.subscribe(({ body }) => {
  renderMathInElement(body, {
    delimiters: [
      { left: "\\(", right: "\\)", display: false },
      { left: "\\[", right: "\\]", display: true },
    ],
    throwOnError: false,
  });
});
