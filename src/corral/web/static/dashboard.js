// corral's dashboard: the few behaviours htmx does not give, as one htmx extension, so the page
// needs no inline script (the Content-Security-Policy is script-src 'self').
//
// - hx-ext="corral-json" on a form: its fields are sent to /api/v1 as a JSON body. A field named
//   "a.b" lands in the object "a"; a field marked data-list is always an array (empty values
//   left out); data-type="int" | "float" | "bool" convert the value; an empty value is left out.
// - data-outcome="#id" on the element that makes the request: the JSON answer fills the
//   element #id (each descendant [data-field=name] gets the answer's `name`: an input its value,
//   anything else its text) and #id is shown; a problem+json answer shows its `detail` in the
//   element named by data-problem (else an alert).
(function () {
  "use strict";

  function convert(field, value) {
    var kind = field.getAttribute("data-type");
    if (kind === "int") { return parseInt(value, 10); }
    if (kind === "float") { return parseFloat(value); }
    if (kind === "bool") { return value === "true" || value === "on" || value === "1"; }
    return value;
  }

  function place(body, name, value, list) {
    var parts = name.split(".");
    var target = body;
    for (var i = 0; i < parts.length - 1; i++) {
      if (typeof target[parts[i]] !== "object" || target[parts[i]] === null) {
        target[parts[i]] = {};
      }
      target = target[parts[i]];
    }
    var key = parts[parts.length - 1];
    if (list) {
      if (!Array.isArray(target[key])) { target[key] = []; }
      if (value !== undefined) { target[key].push(value); }
    } else if (value !== undefined) {
      target[key] = value;
    }
  }

  function encode(form) {
    var body = {};
    var fields = form.querySelectorAll("input[name], select[name], textarea[name]");
    fields.forEach(function (field) {
      var list = field.hasAttribute("data-list");
      var values = [];
      if (field.tagName === "SELECT" && field.multiple) {
        Array.prototype.forEach.call(field.selectedOptions, function (o) { values.push(o.value); });
      } else if (field.type === "checkbox" || field.type === "radio") {
        if (field.checked) { values.push(field.value); }
        else if (field.getAttribute("data-type") === "bool") { values.push("false"); }
      } else {
        values.push(field.value);
      }
      if (list && values.length === 0) { place(body, field.name, undefined, true); }
      values.forEach(function (v) {
        place(body, field.name, v === "" ? undefined : convert(field, v), list);
      });
    });
    return JSON.stringify(body);
  }

  function fill(target, answer) {
    target.querySelectorAll("[data-field]").forEach(function (el) {
      var value = answer[el.getAttribute("data-field")];
      var text = value === undefined || value === null ? "" : String(value);
      if ("value" in el && el.tagName === "INPUT") { el.value = text; }
      else if (el.tagName === "A" && el.hasAttribute("data-href")) {
        el.setAttribute("href", el.getAttribute("data-href") + text);
        el.textContent = text;
      } else { el.textContent = text; }
    });
    target.hidden = false;
  }

  function problem(source, xhr) {
    var detail = "the request failed (" + xhr.status + ")";
    try {
      var answer = JSON.parse(xhr.responseText);
      if (answer && answer.detail) { detail = answer.detail; }
      else if (answer && answer.title) { detail = answer.title; }
    } catch (e) { /* not JSON: keep the status */ }
    var where = source.getAttribute("data-problem");
    var el = where ? document.querySelector(where) : null;
    if (el) { el.textContent = detail; el.hidden = false; } else { window.alert(detail); }
  }

  htmx.defineExtension("corral-json", {
    onEvent: function (name, evt) {
      if (name === "htmx:configRequest") {
        evt.detail.headers["Content-Type"] = "application/json";
      }
      return true;
    },
    encodeParameters: function (xhr, parameters, elt) {
      xhr.overrideMimeType("application/json");
      var form = elt.tagName === "FORM" ? elt : elt.closest("form");
      return form ? encode(form) : "{}";
    }
  });

  document.addEventListener("htmx:afterRequest", function (evt) {
    var source = evt.detail.elt;
    if (!source || !source.hasAttribute || !source.hasAttribute("data-outcome")) { return; }
    var xhr = evt.detail.xhr;
    var where = source.getAttribute("data-problem");
    var problemEl = where ? document.querySelector(where) : null;
    if (problemEl) { problemEl.hidden = true; }
    if (xhr.status >= 200 && xhr.status < 300) {
      var answer = {};
      try { answer = JSON.parse(xhr.responseText || "{}"); } catch (e) { answer = {}; }
      var target = document.querySelector(source.getAttribute("data-outcome"));
      if (target) { fill(target, answer); }
    } else {
      problem(source, xhr);
    }
  });

  // A failed request otherwise leaves the page unchanged: let the outcome handler above run.
  document.addEventListener("htmx:responseError", function (evt) {
    if (evt.detail.elt && evt.detail.elt.hasAttribute("data-outcome")) { evt.preventDefault(); }
  });
})();
