// Starts Swagger UI on /docs from a file, so the page needs no inline script under its CSP.
const root = document.getElementById("swagger-ui");
// eslint-disable-next-line no-undef
window.ui = SwaggerUIBundle({ url: root.dataset.openapi, domNode: root, deepLinking: true });
