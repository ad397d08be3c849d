// The notebook widget (anywidget): the heatmap and all-heads views over a data source that talks to the
// Python kernel through the widget model's custom messages.

function render({ model, el }) {
  el.textContent = `VisualizeAI: ${model.get("info").n} tokens`;
  return () => {};
}

export default { render };
