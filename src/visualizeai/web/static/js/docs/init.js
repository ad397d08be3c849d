// The API reference page: Swagger UI (vendored from npm, loaded by the template) over the app's own schema.
// No validator badge and no other outside request, so the page works offline.
const root = document.getElementById("swagger-ui");

window.SwaggerUIBundle({
  url: root.dataset.spec,
  domNode: root,
  validatorUrl: null,
  deepLinking: true,
  tryItOutEnabled: false,
  onComplete: () => {
    root.dataset.state = "ready";
  },
});
