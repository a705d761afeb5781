package report

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/css"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/chromedp"
)

// TestBrowserRendering opens the HTML statement, impact report and
// transparency report of the demo data in headless Chromium, in both
// languages, and checks the rendered page: the expected texts are in the
// DOM, the Chinese pages are drawn with a CJK font, the page is not blank.
// With -update it writes screenshots of the statement and impact report to
// doc/img/. It needs DOMICILE_TEST_CHROMIUM, the path of a chromium binary
// (.ci/run sets it).
func TestBrowserRendering(t *testing.T) {
	exe := os.Getenv("DOMICILE_TEST_CHROMIUM")
	if exe == "" {
		t.Skip("set DOMICILE_TEST_CHROMIUM to a chromium binary to run the browser tests (.ci/run does)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1100, 900))
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()

	docs := demoDocs(t)
	dir := t.TempDir()
	tests := []struct {
		doc   string
		want  []string
		shot  string
		cjk   bool
		blank int // minimum visible text length
	}{
		{"statement.en", []string{"Your data statement", "Who holds the keys", "PRC authorities", "CN.DSL.35", "Shenzhen New Cloud Operations", "PIPL Art. 47", "TICKET-7"}, "statement.en.png", false, 2000},
		{"statement.zh-CN", []string{"您的数据说明", "谁持有密钥", "中国境内主管机关", "CN.DSL.35", "深圳新云运营有限公司", "撤回同意"}, "statement.zh-CN.png", true, 1000},
		{"impact.en", []string{"Stakeholder impact report", "What the business must do first", "CN.PIPL.55", "Before", "After"}, "impact.en.png", false, 1500},
		{"impact.zh-CN", []string{"利益相关方影响报告", "企业须首先完成的事项", "CN.PIPL.55", "变更前", "变更后"}, "impact.zh-CN.png", true, 800},
		{"transparency.en", []string{"Transparency report", "Accesses by operator staff", "support"}, "", false, 800},
		{"transparency.zh-CN", []string{"透明度报告", "运营方员工访问"}, "", true, 300},
	}
	for _, tt := range tests {
		t.Run(tt.doc, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Render(&buf, docs[tt.doc], HTML); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, tt.doc+".html")
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := chromedp.Do(bctx, chromedp.Navigate("file://"+path), chromedp.WaitReady("body")); err != nil {
				t.Fatal(err)
			}
			text, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.innerText`))
			if err != nil {
				t.Fatal(err)
			}
			if len([]rune(strings.TrimSpace(text))) < tt.blank {
				t.Errorf("the page shows only %d characters of text", len([]rune(text)))
			}
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("the rendered page lacks %q", w)
				}
			}
			lang, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.documentElement.lang`))
			if err != nil || lang != strings.TrimPrefix(tt.doc[strings.Index(tt.doc, ".")+1:], "") {
				t.Errorf("html lang = %q (%v)", lang, err)
			}
			if tt.cjk {
				fonts := platformFonts(t, bctx, "h1")
				cjk := false
				for _, f := range fonts {
					if strings.Contains(f, "CJK") || strings.Contains(f, "Han") || strings.Contains(f, "SC") {
						cjk = true
					}
				}
				if !cjk {
					t.Errorf("the Chinese heading is drawn with %v, no CJK font (install fonts-noto-cjk)", fonts)
				}
			}
			if tt.shot != "" && *update {
				png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join("..", "doc", "img", tt.shot), png, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// platformFonts returns the platform fonts Chromium used to draw the text
// of the first element matching sel (CSS.getPlatformFontsForNode).
func platformFonts(t *testing.T, ctx context.Context, sel string) []string {
	t.Helper()
	if _, err := chromedp.Call(ctx, dom.Enable, dom.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, css.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	ids, err := chromedp.Run(ctx, chromedp.QueryNodeIDs(chromedp.CSS(sel)))
	if err != nil || len(ids) == 0 {
		t.Fatalf("no %s: %v", sel, err)
	}
	res, err := chromedp.Call(ctx, css.GetPlatformFontsForNode, css.GetPlatformFontsForNodeParams{NodeID: ids[0]})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range res.Fonts {
		out = append(out, f.FamilyName)
	}
	return out
}
