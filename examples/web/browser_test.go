// Package web_test drives examples/web end to end in headless Chromium:
// Debian's chromium, through the DevTools protocol (chromedp), loads the
// BFF's page, which embeds a report with Microsoft's powerbi-client; the BFF
// asks Embedgate (the real server, over mTLS) for the token; the iframe is
// the emulator's embed page (over HTTPS), which shows what the token grants.
//
// The embed URLs are Power BI's (https://app.powerbi.com/reportEmbed?...),
// as the emulator returns them and powerbi-client demands; Chromium resolves
// app.powerbi.com to the emulator (--host-resolver-rules) and accepts the
// emulator's certificate, and only it, by its key
// (--ignore-certificate-errors-spki-list).
//
// It needs chromium, node and examples/web's npm packages, which `make test`
// installs. Without them it skips, except under EMBEDGATE_CI=1 (CI), where
// it fails.
package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/embedgate/embedgate/internal/embedpage"
)

// logEntry is one line of the page's event list (#log li).
type logEntry struct {
	Event              string  `json:"event"`
	At                 float64 `json:"at"` // ms since the epoch
	TokenID            string  `json:"tokenId"`
	PreviousExpiration float64 `json:"previousExpiration"` // ms since the epoch
	Message            string  `json:"message"`
	Text               string  `json:"text"`
}

const readLog = `[...document.querySelectorAll("#log li")].map((li) => ({
  event: li.dataset.event, at: Number(li.dataset.at), tokenId: li.dataset.tokenId || "",
  previousExpiration: Number(li.dataset.previousExpiration || 0), message: li.dataset.message || "", text: li.textContent }))`

// frameView is what the emulator's embed page shows.
type frameView struct {
	Name       string     `json:"name"`
	Identities [][]string `json:"identities"` // username, roles, custom data
	TokenID    string     `json:"tokenId"`
	TokensSet  string     `json:"tokensSet"`
	Failure    string     `json:"failure"`
}

const readFrame = `({
  name: document.getElementById("item").hidden ? "" : document.getElementById("name").textContent,
  identities: [...document.querySelectorAll("#identities tr.identity")].map((tr) => [...tr.children].map((td) => td.textContent)),
  tokenId: document.getElementById("token-id").textContent,
  tokensSet: document.getElementById("tokens-set").textContent,
  failure: document.getElementById("failure").hidden ? "" : document.getElementById("failure-message").textContent })`

// TestBrowserRefreshLoop: the page shows the report with the RLS identity
// the policy gives the BFF's user; it renews its token at refresh_time,
// before each expiry, and never fires an error event; a token for another
// report, or an expired one, gets powerbi-client's error event; the
// emulator's dashboard and paginated report pages load too.
//
// Short lifetimes, honestly: the emulator's Entra tokens live entraLife
// (its token_lifetime knob), and Power BI caps an embed token at the
// remaining life of the Entra token that minted it; Embedgate honours that
// cap, so its tokens live 7.5 to 30 s (it renews its Entra token with a
// quarter of its life left) and refresh_time comes halfway. Policy
// lifetimes cannot go below a minute (Power BI's lifetimeInMinutes).
func TestBrowserRefreshLoop(t *testing.T) {
	chromium, node := requirements(t)
	buildBFF(t, node)
	w := startWorld(t, node)
	t.Cleanup(func() { w.checkNoSecrets(t) })
	// A token the page will also get (identical grants share one), kept
	// for after it has expired.
	early := w.embed(t, sales)

	browser := startBrowser(t, chromium, w)
	page, cancelPage := chromedp.NewContext(browser)
	defer cancelPage()
	console := watchConsole(page)
	defer func() {
		if t.Failed() {
			t.Logf("the page's console:\n%s", console())
		}
	}()

	// Alongside, each in a tab of its own, a plain host page with
	// powerbi-client embeds: a report with a token for another report; the
	// emulator's other two pages, with V1 tokens straight from its Power BI
	// (the dashboard has a tile of the RLS model Sales).
	inventoryPage := w.embed(t, inventory)
	alongside := make(chan map[string][]sdkEvent, 1)
	var wg sync.WaitGroup
	defer wg.Wait() // it reports to t: the test must not end before it does
	wg.Go(func() {
		events := map[string][]sdkEvent{"foreign": embedWith(t, browser, w.bff, "report", inventoryPage.EmbedURL, early.Token)}
		for _, item := range []struct{ page, typ, path string }{
			{"dashboard", "dashboard", "/dashboards/" + dashboard},
			{"paginated", "report", "/reports/" + invoices},
		} {
			body := map[string]any{"accessLevel": "View"}
			if item.typ == "dashboard" {
				body["identities"] = []any{map[string]any{"username": user, "roles": []string{"Customer"}, "datasets": []string{salesModel}}}
			}
			embedURL, token, err := w.mint(item.path, body)
			if err != nil {
				t.Errorf("the %s page: %v", item.page, err)
				continue
			}
			events[item.page] = embedWith(t, browser, w.bff, item.typ, embedURL, token)
		}
		alongside <- events
	})

	// The page renders the report with the user's RLS identity.
	if err := chromedp.Do(page, chromedp.Navigate(w.bff+"/")); err != nil {
		t.Fatal(err)
	}
	entries := waitLog(t, page, `entries.some((e) => e.event === "rendered")`, 30*time.Second)
	view := frame(t, browser, sales)
	if view.Name != "Sales" || len(view.Identities) != 1 || view.Identities[0][0] != user || view.Identities[0][1] != "Customer" {
		t.Fatalf("the embedded report shows %+v, want Sales seen as %s with role Customer (page events: %v)", view, user, texts(entries))
	}

	// It renews at refresh_time, before each expiry, past the first token's
	// expiry, without an error.
	entries = waitLog(t, page, `(() => {
  const renewed = entries.filter((e) => e.event === "renewed");
  return renewed.length >= 2 && Date.now() > renewed[0].previousExpiration + 1500;
})()`, 3*entraLife)
	var renewed []logEntry
	for _, e := range entries {
		switch e.Event {
		case "renewed":
			renewed = append(renewed, e)
			if e.At >= e.PreviousExpiration {
				t.Errorf("renewed at %v, after the token it replaced expired (%v)", ms(e.At), ms(e.PreviousExpiration))
			}
		case "loaded", "rendered":
		default:
			t.Errorf("unexpected page event: %s", e.Text)
		}
	}
	last := renewed[len(renewed)-1]
	view = frame(t, browser, sales)
	if view.TokenID != last.TokenID || view.TokensSet != fmt.Sprint(len(renewed)+1) || len(view.Identities) != 1 || view.Identities[0][0] != user {
		t.Errorf("after %d renewals the report shows %+v, want token %s (set %d times) seen as %s", len(renewed), view, last.TokenID, len(renewed)+1, user)
	}
	if png, err := chromedp.Run(page, chromedp.CaptureScreenshot()); err != nil {
		t.Error(err)
	} else {
		writeScreenshot(t, png)
	}

	// A token for another report: the error event, never loaded. The
	// dashboard and the paginated report load and render.
	events := <-alongside
	if !hasOnly(events["foreign"], "error", "LoadReportFailed") {
		t.Errorf("a token for another report: events %v, want only an error LoadReportFailed", events["foreign"])
	}
	for _, page := range []string{"dashboard", "paginated"} {
		if e := events[page]; len(e) != 2 || e[0].Name != "loaded" || e[1].Name != "rendered" {
			t.Errorf("the %s page: events %v, want loaded, rendered", page, e)
		}
	}

	// The page `embedgate token --html` writes renders the report with a
	// token, as powerbi-client loads it from the page itself. (Tokens live
	// seconds here: each is fresh.)
	if state := tokenPage(t, browser, inventoryPage.EmbedURL, inventory, w.embed(t, inventory).Token); state != "rendered" {
		t.Errorf("the embedgate token --html page: %s, want rendered", state)
	}
	if state := tokenPage(t, browser, inventoryPage.EmbedURL, inventory, w.embed(t, sales).Token); !strings.HasPrefix(state, "error: LoadReportFailed") {
		t.Errorf("the embedgate token --html page with a token for another report: %s, want error: LoadReportFailed", state)
	}

	// An expired token: TokenExpired.
	if d := time.Until(early.Expiration); d > 0 {
		<-time.After(d) // the expiry itself is what this case waits for
	}
	if events := embedWith(t, browser, w.bff, "report", early.EmbedURL, early.Token); !hasOnly(events, "error", "TokenExpired") {
		t.Errorf("an expired token: events %v, want only an error TokenExpired", events)
	}
}

// startBrowser starts headless Chromium, with app.powerbi.com resolved to
// the emulator and its serving key accepted; it stops when the test ends.
func startBrowser(t *testing.T, chromium string, w *world) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.WindowSize(1280, 720),
		chromedp.Flag("host-resolver-rules", "MAP "+powerBIApp+" "+strings.TrimPrefix(w.emu.URL(), "https://")),
		chromedp.Flag("ignore-certificate-errors-spki-list", w.spki),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run its sandbox as root
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	return browser
}

// waitLog polls the page's event list (as entries) until cond holds or the
// page lists an error, and returns the list.
func waitLog(t *testing.T, page context.Context, cond string, timeout time.Duration) []logEntry {
	t.Helper()
	expr := `(() => { const entries = ` + readLog + `;
  return entries.some((e) => e.event === "error" || e.event === "failed" || e.event === "renewal-failed") || ` + cond + `; })()`
	_, err := chromedp.Run(page, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	entries, rerr := chromedp.Run(page, chromedp.Evaluate[[]logEntry](readLog))
	if rerr != nil {
		t.Fatal(rerr)
	}
	if err != nil {
		t.Fatalf("waiting for %s: %v; page events: %v", cond, err, texts(entries))
	}
	for _, e := range entries {
		if e.Event == "error" || e.Event == "failed" || e.Event == "renewal-failed" {
			t.Fatalf("the page reported %q; page events: %v", e.Text, texts(entries))
		}
	}
	return entries
}

// frame reads what the emulator's embed page of a report shows: it is a
// cross-site iframe, so it runs as a target of its own (attached to, then
// detached from: closing it would take the report away).
func frame(t *testing.T, browser context.Context, report string) frameView {
	t.Helper()
	targets, err := chromedp.Targets(browser)
	if err != nil {
		t.Fatal(err)
	}
	var found *target.Info
	for _, ti := range targets {
		if ti.Type == "iframe" && strings.HasPrefix(ti.URL, "https://"+powerBIApp+"/reportEmbed?") && strings.Contains(ti.URL, "reportId="+report) {
			found = ti
		}
	}
	if found == nil {
		t.Fatalf("no iframe of report %s among the browser's targets", report)
	}
	fctx, cancel := chromedp.NewContext(browser, chromedp.WithTargetID(found.TargetID), chromedp.WithDetachOnCancel())
	defer cancel()
	v, err := chromedp.Run(fctx, chromedp.Evaluate[frameView](readFrame))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// sdkEvent is an event powerbi-client raised on an embedded report.
type sdkEvent struct {
	Name    string `json:"name"`
	Message string `json:"message"`
}

func (e sdkEvent) String() string { return strings.TrimSuffix(e.Name+" "+e.Message, " ") }

// hostPage is a page that only loads powerbi-client (from the BFF) and
// embeds what it is told to, recording the report's events.
const hostPage = `<!doctype html><html><body><div id="c" style="width:900px;height:400px"></div>
<script src="%s/vendor/powerbi.min.js"></script>
<script>
window.events = [];
window.embedWith = (type, embedUrl, accessToken) => {
  const embedded = powerbi.embed(document.getElementById("c"), {
    type, embedUrl, accessToken, tokenType: window["powerbi-client"].models.TokenType.Embed });
  for (const name of ["loaded", "rendered", "error"]) {
    embedded.on(name, (e) => window.events.push({ name, message: (e.detail && e.detail.message) || "" }));
  }
};
</script></body></html>`

// embedWith embeds embedURL (of a report or a dashboard: typ) with token in
// a new tab of a plain host page, and returns the events once an error or
// rendered arrived.
func embedWith(t *testing.T, browser context.Context, bff, typ, embedURL, token string) []sdkEvent {
	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, hostPage, bff)
	}))
	defer host.Close()
	tab, cancel := chromedp.NewContext(browser)
	defer cancel()
	args, _ := json.Marshal([]string{typ, embedURL, token})
	err := chromedp.Do(tab,
		chromedp.Navigate(host.URL),
		chromedp.Evaluate[chromedp.Void]("window.embedWith(..."+string(args)+")"),
		chromedp.Poll[chromedp.Void](`window.events.some((e) => e.name === "error" || e.name === "rendered")`,
			chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
	events, eerr := chromedp.Run(tab, chromedp.Evaluate[[]sdkEvent]("window.events"))
	if err == nil {
		err = eerr
	}
	if err != nil {
		// The error may quote the expression, which holds the token.
		t.Errorf("embedding %s: %s (events so far: %v)", embedURL, embedToken.ReplaceAllString(err.Error(), "(a token)"), events)
	}
	return events
}

// tokenPage opens, in a tab of its own, the page `embedgate token --html`
// writes for a report and a token, and returns how far the report got:
// "rendered", or "error: " and the message.
func tokenPage(t *testing.T, browser context.Context, embedURL, report, token string) string {
	t.Helper()
	var page bytes.Buffer
	err := embedpage.Write(&page, embedpage.Config{TokenType: "Embed", AccessToken: token, Expiration: time.Now().Add(time.Minute),
		Items: []embedpage.Item{{Type: "report", ID: report, Name: "Inventory", EmbedURL: embedURL}}})
	if err != nil {
		t.Fatal(err)
	}
	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page.Bytes())
	}))
	defer host.Close()
	tab, cancel := chromedp.NewContext(browser)
	defer cancel()
	const state = `(() => { const s = document.getElementById("embed-0").dataset.state || "";
  return s === "error" ? "error: " + document.getElementById("error-0").textContent : s; })()`
	err = chromedp.Do(tab, chromedp.Navigate(host.URL),
		chromedp.Poll[chromedp.Void](`["rendered", "error"].includes(document.getElementById("embed-0").dataset.state)`,
			chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
	got, eerr := chromedp.Run(tab, chromedp.Evaluate[string](state))
	if err == nil {
		err = eerr
	}
	if err != nil {
		t.Errorf("the token page: %s", embedToken.ReplaceAllString(err.Error(), "(a token)"))
	}
	return got
}

// hasOnly reports whether events is exactly one event of that name and
// message.
func hasOnly(events []sdkEvent, name, message string) bool {
	return len(events) == 1 && events[0].Name == name && events[0].Message == message
}

// embedToken matches an emulator's embed token: base64 of gzip, whose magic
// number encodes as H4sI.
var embedToken = regexp.MustCompile(`H4sI[A-Za-z0-9+/=_-]*`)

// watchConsole collects the page's console messages and uncaught
// exceptions, for a failed test's log (tokens left out).
func watchConsole(ctx context.Context) func() string {
	var (
		mu    sync.Mutex
		lines []string
	)
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			line := m.String()
			if strings.Contains(line, "H4sI") {
				line = "(a line holding a token, left out)"
			}
			mu.Lock()
			lines = append(lines, line)
			mu.Unlock()
		}
	}()
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(lines, "\n")
	}
}

func texts(entries []logEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Text)
	}
	return out
}

func ms(v float64) string { return time.UnixMilli(int64(v)).Format("15:04:05.000") }
