"""The dashboard's stylesheet and its one script, served by the dashboard router from these strings.

They live in Python, not in static files, so `pip install .` (the Dockerfile) ships them without any
package-data configuration. The pages' Content-Security-Policy allows scripts and styles from the app
only, so nothing inline runs even if some text escaped its escaping.
"""

from __future__ import annotations

from deployments.charts import PLATFORM_COLORS

_SWATCHES = "\n".join(f".swatch-{name} {{ background: {color}; }}" for name, color in PLATFORM_COLORS.items())

DASHBOARD_CSS = """
:root { color-scheme: light; --ink: #1d1d1f; --muted: #666; --line: #e3e3e3; --accent: #2457c5; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       background: #f6f7f9; }
header.top { background: #15171c; color: #fff; padding: 10px 24px; display: flex; gap: 16px; align-items: center; }
header.top a { color: #fff; text-decoration: none; font-weight: 600; }
header.top .mode { margin-left: auto; font-size: 12px; padding: 2px 8px; border-radius: 10px; background: #333a48; }
main { max-width: 1100px; margin: 0 auto; padding: 20px 24px 48px; }
h1 { font-size: 24px; margin: 8px 0 2px; }
h2 { font-size: 17px; margin: 0 0 10px; }
.sub { color: var(--muted); margin: 0 0 16px; }
section.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 18px;
               margin: 16px 0; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; }
.stat { border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; }
.stat .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.stat .value { font-size: 20px; font-weight: 600; }
table { width: 100%; border-collapse: collapse; font-size: 14px; }
th, td { text-align: left; padding: 7px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
td.time { white-space: nowrap; }
.scroll { overflow-x: auto; }
#decision-log td:nth-child(4) { min-width: 200px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
a { color: var(--accent); }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, monospace; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600;
         background: #eceef2; color: #333; white-space: nowrap; }
.badge.published, .badge.applied, .badge.COMPLETED { background: #dff3e4; color: #14692c; }
.badge.scheduled, .badge.pending, .badge.RUNNING, .badge.QUEUED, .badge.NEW { background: #e3ecfb; color: #1d4aa8; }
.badge.failed, .badge.not_applied, .badge.FAILED { background: #fbe3e3; color: #a11d1d; }
.badge.dry_run, .badge.unchanged, .badge.skipped, .badge.waiting { background: #eceef2; color: #444; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 6px; }
""" + _SWATCHES + """
.charts { display: grid; grid-template-columns: 1fr; gap: 8px; }
svg.chart { width: 100%; height: auto; display: block; }
.note { color: var(--muted); font-size: 13px; }
.error-text { color: #a11d1d; }
ul.moves { list-style: none; margin: 0; padding: 0; white-space: nowrap; }
meter { width: 140px; height: 12px; vertical-align: middle; }
form.create { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); gap: 12px 18px; }
form.create label { display: block; font-weight: 600; font-size: 13px; margin-bottom: 4px; }
form.create input[type=text], form.create input[type=number], form.create input[type=password] {
  width: 100%; padding: 7px 9px; border: 1px solid #c8ccd4; border-radius: 6px; font: inherit; }
form.create input[aria-invalid=true] { border-color: #c62828; background: #fff6f6; }
form.create fieldset { border: 0; padding: 0; margin: 0; }
form.create legend { font-weight: 600; font-size: 13px; margin-bottom: 4px; padding: 0; }
form.create fieldset label { display: inline-block; font-weight: 400; margin-right: 12px; }
form.create .actions { grid-column: 1 / -1; display: flex; gap: 12px; align-items: center; }
form.create button { background: var(--accent); color: #fff; border: 0; border-radius: 6px; padding: 9px 18px;
                     font: inherit; font-weight: 600; cursor: pointer; }
form.create button[disabled] { opacity: .6; cursor: progress; }
.field-error { color: #c62828; font-size: 13px; min-height: 1em; margin-top: 3px; }
.result { margin-top: 12px; padding: 10px 12px; border-radius: 6px; }
.result:empty { display: none; }
.result.ok { background: #dff3e4; }
.result.error { background: #fbe3e3; }
.result.busy { background: #e3ecfb; }
"""

# Submits the create-campaign form as JSON with the Bearer token, then shows the new campaign or the
# API's errors (a 422's field errors next to their fields). Builds DOM nodes, never HTML strings.
DASHBOARD_JS = r"""
"use strict";
(function () {
  const form = document.getElementById("create-form");
  if (!form) { return; }
  const result = document.getElementById("create-result");
  const button = form.querySelector("button[type=submit]");
  // API field (first part of the error's location) -> the form field that shows its error
  const FIELDS = { artist_name: "artist", song_name: "song", daily_budget: "daily_budget",
                   platforms: "platforms", token: "token" };

  function clearErrors() {
    form.querySelectorAll(".field-error").forEach((el) => { el.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach((el) => { el.removeAttribute("aria-invalid"); });
    result.replaceChildren();
    result.className = "result";
  }

  function fieldError(field, message) {
    const key = FIELDS[String(field).split(".")[0]];
    const slot = key ? document.getElementById("error-" + key) : null;
    if (!slot) { return false; }
    slot.textContent = slot.textContent ? slot.textContent + "; " + message : message;
    const input = document.getElementById("input-" + key);
    if (input) { input.setAttribute("aria-invalid", "true"); }
    return true;
  }

  function say(kind, ...nodes) {
    result.className = "result " + kind;
    result.replaceChildren(...nodes);
  }

  function text(tag, value, id) {
    const el = document.createElement(tag);
    el.textContent = value;
    if (id) { el.id = id; }
    return el;
  }

  function showSuccess(data) {
    const id = String(data.campaign && data.campaign.id);
    const link = document.createElement("a");
    link.href = data.monitoring_url || ("/campaigns/" + encodeURIComponent(id) + "/dashboard");
    link.id = "created-campaign-link";
    link.textContent = "Open its dashboard";
    const launch = data.launch && data.launch.status ? data.launch.status : "unknown";
    const parts = [document.createTextNode("Campaign "), text("code", id, "created-campaign-id"),
                   document.createTextNode(" created; launch " + launch + ". "), link];
    if (data.analysis && typeof data.analysis.virality_score === "number") {
      parts.splice(3, 0, document.createTextNode("Virality score " + data.analysis.virality_score.toFixed(2) + ". "));
    }
    say("ok", ...parts);
    result.dataset.campaignId = id;
  }

  function showErrors(status, payload) {
    const detail = payload && payload.detail !== undefined ? payload.detail : payload;
    if (status === 401) {
      fieldError("token", typeof detail === "string" ? detail : "the API token was not accepted");
      say("error", document.createTextNode("Not authorised: check the API token."));
      return;
    }
    const loose = [];
    if (Array.isArray(detail)) {
      for (const item of detail) {
        const field = item.field || (Array.isArray(item.loc) ? item.loc.filter((p) => p !== "body").join(".") : "");
        const message = item.error || item.msg || JSON.stringify(item);
        if (!fieldError(field, message)) { loose.push((field ? field + ": " : "") + message); }
      }
    } else {
      loose.push(typeof detail === "string" ? detail : JSON.stringify(detail));
    }
    const heading = status === 422 ? "Please fix the highlighted fields." : "The API answered " + status + ".";
    say("error", document.createTextNode(heading + (loose.length ? " " + loose.join("; ") : "")));
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const data = new FormData(form);
    const artist = String(data.get("artist") || "").trim();
    const song = String(data.get("song") || "").trim();
    const budget = String(data.get("daily_budget") || "").trim();
    const token = String(data.get("token") || "").trim();
    if (!token) {
      fieldError("token", "enter the API token (METACENTRIC_API_TOKEN)");
      return;
    }
    const body = { name: artist + " - " + song, artist_name: artist, song_name: song,
                   daily_budget: budget === "" || Number.isNaN(Number(budget)) ? null : Number(budget),
                   platforms: data.getAll("platforms") };
    button.disabled = true;
    say("busy", document.createTextNode("Creating the campaign on Meta and starting the launch\u2026"));
    try {
      const response = await fetch(form.dataset.endpoint, {
        method: "POST",
        headers: { "Content-Type": "application/json", "Authorization": "Bearer " + token },
        body: JSON.stringify(body),
      });
      const raw = await response.text();
      let payload = raw;
      try { payload = JSON.parse(raw); } catch (_) { /* not JSON: show the text */ }
      if (response.ok) { showSuccess(payload); } else { showErrors(response.status, payload); }
    } catch (err) {
      say("error", document.createTextNode("Could not reach the receiver: " + err));
    } finally {
      button.disabled = false;
    }
  });
})();
"""
