/**
 * The page: embeds the report the BFF names with powerbi-client, and renews
 * its embed token at the refresh time Embedgate gave, without reloading the
 * report (report.setAccessToken). Every step is listed under "Events".
 */
import type { IEmbedConfiguration, Report, service as pbiService } from "powerbi-client";

declare global {
  interface Window {
    /** powerbi-client's embedding service. */
    powerbi: pbiService.Service;
    /** powerbi-client's exports (models, factories...). */
    "powerbi-client": typeof import("powerbi-client");
  }
}

/** What GET /api/embed answers. */
interface EmbedConfig {
  reportId: string;
  reportName: string;
  embedUrl: string;
  token: string;
  tokenId: string;
  expiration: string;
  refreshTime: string;
}

/** An IError of powerbi-models: the detail of the report's error event. */
interface PowerBIError {
  message: string;
  detailedMessage?: string;
}

// A clock ahead of Embedgate's could see a refresh time already past: never
// ask again sooner than this.
const MIN_DELAY_MS = 1_000;
// A failed renewal is tried again after this (the token still has time:
// Embedgate's refresh time leaves ten minutes for tokens long enough).
const RETRY_MS = 5_000;

async function fetchEmbed(report?: string): Promise<EmbedConfig> {
  const res = await fetch("/api/embed" + (report ? `?report=${encodeURIComponent(report)}` : ""), { cache: "no-store" });
  if (!res.ok) {
    const body = (await res.json().catch(() => ({}))) as { error?: string };
    throw new Error(`GET /api/embed: ${res.status} ${body.error ?? ""}`);
  }
  return (await res.json()) as EmbedConfig;
}

function text(id: string, value: string): void {
  document.getElementById(id)!.textContent = value;
}

function clock(iso: string): string {
  return new Date(iso).toLocaleTimeString();
}

/** log adds a line to the page's list of events; data goes into data-* attributes. */
function log(event: string, detail: string, data: Record<string, string> = {}): void {
  const li = document.createElement("li");
  li.dataset.event = event;
  li.dataset.at = String(Date.now());
  Object.assign(li.dataset, data);
  li.textContent = `${new Date().toLocaleTimeString()} ${event}${detail ? ": " + detail : ""}`;
  document.getElementById("log")!.append(li);
}

function showToken(c: EmbedConfig): void {
  text("report-name", c.reportName);
  text("token-id", c.tokenId);
  text("expiration", clock(c.expiration));
  text("refresh-time", clock(c.refreshTime));
}

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  const e = err as Partial<PowerBIError> | undefined;
  return e?.message ? `${e.message}: ${e.detailedMessage ?? ""}` : String(err);
}

async function main(): Promise<void> {
  const requested = new URLSearchParams(location.search).get("report") ?? undefined;
  let current = await fetchEmbed(requested);
  showToken(current);

  const config: IEmbedConfiguration = {
    type: "report",
    id: current.reportId,
    embedUrl: current.embedUrl,
    accessToken: current.token,
    // An embed token (app owns data). Without this, powerbi-client sends the
    // token as an Entra ID token, and Power BI refuses it.
    tokenType: window["powerbi-client"].models.TokenType.Embed,
  };
  const report = window.powerbi.embed(document.getElementById("report")!, config) as Report;
  report.on("loaded", () => log("loaded", current.reportName));
  report.on("rendered", () => log("rendered", ""));
  report.on("error", (e) => {
    const d = e?.detail as PowerBIError;
    log("error", `${d.message}: ${d.detailedMessage ?? ""}`, { message: d.message });
  });

  // The refresh loop: at refreshTime, ask the BFF again (Embedgate hands out
  // a new token from then on) and give it to the report.
  let timer: ReturnType<typeof setTimeout> | undefined;
  let renewing = false;
  const schedule = (at: number): void => {
    clearTimeout(timer);
    timer = setTimeout(renew, Math.max(at - Date.now(), MIN_DELAY_MS));
  };
  async function renew(): Promise<void> {
    if (renewing) return;
    renewing = true;
    const previous = current;
    try {
      const next = await fetchEmbed(previous.reportId);
      await report.setAccessToken(next.token);
      // A token that expired before it was replaced (a laptop that slept)
      // has already failed the report: show it again.
      if (Date.now() >= Date.parse(previous.expiration)) await report.reload();
      current = next;
      showToken(current);
      log("renewed", `token ${next.tokenId}, expires ${clock(next.expiration)}`, {
        tokenId: next.tokenId,
        previousExpiration: String(Date.parse(previous.expiration)),
      });
      schedule(Date.parse(current.refreshTime));
    } catch (err) {
      log("renewal-failed", errorText(err));
      schedule(Date.now() + RETRY_MS);
    } finally {
      renewing = false;
    }
  }
  schedule(Date.parse(current.refreshTime));

  // A hidden tab's timers are throttled (to once a minute, or less): renew
  // as soon as it is visible again if the refresh time has passed.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && Date.now() >= Date.parse(current.refreshTime)) void renew();
  });
}

main().catch((err: unknown) => log("failed", errorText(err)));
