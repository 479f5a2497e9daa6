"""The clinic's staff pages in a real browser: Debian's headless Chromium, driven by playwright,
against `lotsa clinic serve` over its own HTTPS, with referrals a real phone (`lotsa field`)
delivered and withdraws. Accessibility is checked with axe-core at WCAG 2.1 AA: no violation at all.

Each test makes its own referrals (names no other test uses) and its own staff accounts, so the
tests do not depend on their order; the clinic, the phone and the browser are shared.
Screenshots of the key steps go to tests/browser/artifacts/.
"""

from __future__ import annotations

import urllib.parse

import pytest
from playwright.sync_api import Page, expect

from conftest import AXE, PHONE_E164, Account, Clinic

SESSION_COOKIE = "__Host-lotsa-staff"
WCAG21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
PHONE_VIEWPORT = {"width": 375, "height": 667}


# --- helpers ----------------------------------------------------------------------------------


def path_of(page: Page) -> str:
    return urllib.parse.urlsplit(page.url).path


def shot(page: Page, artifacts, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def submit_ok(page: Page, button) -> None:
    """Clicks a submit button of a form that must succeed (its 303 leads to a 200 page)."""
    navigate_ok(page, button.click)


def enter_ok(page: Page) -> None:
    """Presses Enter to submit the form in focus, which must succeed."""
    navigate_ok(page, lambda: page.keyboard.press("Enter"))


def navigate_ok(page: Page, action) -> None:
    """Runs `action`, waits for the page it leads to, and fails unless that page is a 200; the
    failure names the refusal page's heading and the Origin header the browser sent."""
    with page.expect_navigation() as navigation:
        action()
    response = navigation.value
    if response.status != 200:
        sent = response.request
        while sent.redirected_from is not None:
            sent = sent.redirected_from
        headers = sent.all_headers()
        heading = page.locator("h1").first.inner_text() if page.locator("h1").count() else ""
        pytest.fail(
            f"{sent.method} {urllib.parse.urlsplit(sent.url).path} was refused: {response.status} "
            f"{heading!r}; the browser sent Origin: {headers.get('origin')!r}, "
            f"Sec-Fetch-Site: {headers.get('sec-fetch-site')!r}"
        )


def entry(page: Page, name: str):
    """The worklist item of the person called `name`."""
    return page.locator("ol.worklist > li").filter(
        has=page.get_by_role("heading", level=2, name=name, exact=True)
    )


def log_in(page: Page, clinic: Clinic, account: Account, lang: str = "sv") -> None:
    """Logs `account` in through the login form; chooses its own password on the first login.
    Ends on the worklist."""
    query = "?lang=en" if lang == "en" else ""
    page.goto(clinic.url(f"/staff/login{query}"))
    page.get_by_label("Name" if lang == "en" else "Namn", exact=True).fill(account.name)
    page.get_by_label("Password" if lang == "en" else "Lösenord", exact=True).fill(account.password)
    submit_ok(page, page.get_by_role("button", name="Log in" if lang == "en" else "Logga in"))
    if path_of(page) == "/staff/password":
        assert not account.chosen, f"{account.name} was asked for a new password again"
        choose_password(page, account, lang)
    assert path_of(page) == "/staff/worklist", page.url


def choose_password(page: Page, account: Account, lang: str = "sv") -> None:
    chosen = account.password = "lotsa-" + account.name + "-2026-egen"
    page.get_by_label("New password" if lang == "en" else "Nytt lösenord", exact=True).fill(chosen)
    page.get_by_label("The same again" if lang == "en" else "Samma igen", exact=True).fill(chosen)
    submit_ok(page, page.get_by_role("button", name="Save" if lang == "en" else "Spara"))
    account.chosen = True


def csrf_of(page: Page) -> str:
    return page.locator("input[name=csrf]").first.get_attribute("value")


# --- 1. login, claim, contacted, logout -------------------------------------------------------


def test_login_claim_contacted_and_logout(clinic, phone, staff, new_context, artifacts):
    names = ["Kim Testsson", "Robin Exempel", "Mio Provsson"]
    ids = phone.deliver(*names)
    anna = staff.add("anna")
    context = new_context()
    page = context.new_page()

    # Not logged in: the worklist sends to the login page, Swedish unless asked.
    page.goto(clinic.url("/staff/worklist"))
    assert path_of(page) == "/staff/login"
    expect(page.locator("html")).to_have_attribute("lang", "sv")
    expect(page.get_by_role("heading", level=1)).to_have_text("Logga in")
    shot(page, artifacts, "1-login")

    # The first login, with the one-time password, must choose a password of its own.
    page.get_by_label("Namn", exact=True).fill("anna")
    page.get_by_label("Lösenord", exact=True).fill(anna.password)
    submit_ok(page, page.get_by_role("button", name="Logga in"))
    assert path_of(page) == "/staff/password", page.url
    expect(page.get_by_role("heading", level=1)).to_have_text("Välj ett eget lösenord")
    [cookie] = [c for c in context.cookies() if c["name"] == SESSION_COOKIE]
    assert (cookie["secure"], cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (
        True, True, "Strict", "/"
    ), cookie
    shot(page, artifacts, "1-password")
    choose_password(page, anna)
    assert path_of(page) == "/staff/worklist", page.url

    # The worklist: everyone delivered, each with a tel: link to the E.164 number and a deadline.
    expect(page.get_by_role("heading", level=1)).to_have_text("Väntar på första samtal")
    expect(page.get_by_text("Inloggad: anna")).to_be_visible()
    for name in names:
        item = entry(page, name)
        expect(item).to_have_count(1)
        expect(item.locator(f'a[href="tel:{PHONE_E164}"]')).to_have_text(PHONE_E164)
        expect(item.locator("p.due")).to_contain_text("Ring senast")
        expect(item.get_by_role("button", name="Jag ringer")).to_be_visible()
        expect(item.locator(f'h2[id="h-{ids[name]}"]')).to_have_count(1)
    shot(page, artifacts, "1-worklist")

    # Claim the first, record "contacted: talked": it leaves the list, the others stay.
    first = names[0]
    submit_ok(page, entry(page, first).get_by_role("button", name="Jag ringer"))
    mine = entry(page, first)
    expect(mine).to_contain_text("Du ringer")
    expect(mine.get_by_role("button", name="Jag ringer")).to_have_count(0)
    expect(mine.get_by_role("button", name="Släpp")).to_be_visible()
    outcome = mine.get_by_label("Hur gick samtalet?")
    expect(outcome).to_have_attribute("name", "outcome")
    assert {"contacted:talked", "not_reached:no_answer"} <= set(
        outcome.locator("option").evaluate_all("os => os.map(o => o.value)")
    )
    outcome.select_option("contacted:talked")
    shot(page, artifacts, "1-claimed")
    submit_ok(page, mine.get_by_role("button", name="Spara"))
    assert path_of(page) == "/staff/worklist"
    expect(entry(page, first)).to_have_count(0)
    for name in names[1:]:
        expect(entry(page, name)).to_have_count(1)
    shot(page, artifacts, "1-contacted")

    # Logout: back on the login page; the worklist now only sends there again.
    submit_ok(page, page.get_by_role("button", name="Logga ut"))
    assert path_of(page) == "/staff/login", page.url
    assert not [c for c in context.cookies() if c["name"] == SESSION_COOKIE and c["value"]]
    page.goto(clinic.url("/staff/worklist"))
    assert path_of(page) == "/staff/login", page.url
    expect(page.get_by_role("heading", level=1)).to_have_text("Logga in")
    expect(page.locator("ol.worklist")).to_have_count(0)
    for name in names:
        expect(page.get_by_text(name)).to_have_count(0)
    shot(page, artifacts, "1-logged-out")


# --- 2. a claim held by a colleague -----------------------------------------------------------


def test_a_second_staff_member_cannot_claim_a_claimed_referral(clinic, phone, staff, new_context, artifacts):
    held, free = "Sam Upptagen", "Nora Ledig"
    ids = phone.deliver(held, free)
    # Their own accounts (not test 1's anna): this test does not depend on another's logins.
    cecilia, bertil = staff.add("cecilia"), staff.add("bertil")
    page_c = new_context().new_page()
    page_b = new_context().new_page()
    log_in(page_c, clinic, cecilia)
    log_in(page_b, clinic, bertil)

    submit_ok(page_c, entry(page_c, held).get_by_role("button", name="Jag ringer"))
    expect(entry(page_c, held)).to_contain_text("Du ringer")
    shot(page_c, artifacts, "2-cecilia-claimed")

    # Bertil sees who is calling and has nothing to press for that person; the other is his to take.
    page_b.reload()
    theirs = entry(page_b, held)
    expect(theirs).to_contain_text("cecilia ringer")
    expect(theirs.get_by_role("button")).to_have_count(0)
    expect(theirs.locator("form")).to_have_count(0)
    expect(entry(page_b, free).get_by_role("button", name="Jag ringer")).to_be_visible()
    shot(page_b, artifacts, "2-bertil-sees-claim")

    # Forced anyway, as the browser would send it (his cookie, his CSRF token, this origin): 409.
    token = csrf_of(page_b)
    with page_b.expect_navigation() as navigation:
        page_b.evaluate(
            """([action, token]) => {
                const form = document.createElement('form');
                form.method = 'post';
                form.action = action;
                for (const [name, value] of [['csrf', token], ['lang', 'sv']]) {
                    const input = document.createElement('input');
                    input.type = 'hidden'; input.name = name; input.value = value;
                    form.appendChild(input);
                }
                document.body.appendChild(form);
                form.submit();
            }""",
            [f"/staff/referrals/{ids[held]}/claim", token],
        )
    assert navigation.value.status == 409
    expect(page_b.get_by_role("heading", level=1)).to_have_text("En kollega ringer redan den här personen")
    expect(page_b.get_by_text(held)).to_have_count(0)  # a refusal repeats nothing of the referral
    shot(page_b, artifacts, "2-bertil-refused")

    # The same through the API request context (same cookie jar), with the site's Origin.
    answer = page_b.request.post(
        clinic.url(f"/staff/referrals/{ids[held]}/claim"),
        form={"csrf": token, "lang": "sv"},
        headers={"Origin": clinic.base},
        max_redirects=0,
    )
    assert answer.status == 409, answer.text()
    assert "En kollega ringer redan den här personen" in answer.text()
    # Recording an outcome or releasing someone else's claim is refused too.
    for verb, form in [("record", {"outcome": "contacted:talked"}), ("release", {})]:
        answer = page_b.request.post(
            clinic.url(f"/staff/referrals/{ids[held]}/{verb}"),
            form={"csrf": token, "lang": "sv", **form},
            headers={"Origin": clinic.base},
            max_redirects=0,
        )
        assert answer.status == 409, (verb, answer.status, answer.text())

    # Nothing changed: still cecilia's.
    page_b.goto(clinic.url("/staff/worklist"))
    expect(entry(page_b, held)).to_contain_text("cecilia ringer")
    page_c.reload()
    expect(entry(page_c, held)).to_contain_text("Du ringer")


# --- 3. a withdrawal from the phone -----------------------------------------------------------


def test_a_withdrawal_delivered_while_the_page_is_open_removes_the_referral_on_the_next_load(
    clinic, phone, staff, new_context, artifacts
):
    leaving, staying = "Alex Återkallar", "Maja Stannar"
    ids = phone.deliver(leaving, staying)
    dora = staff.add("dora")
    page = new_context().new_page()
    log_in(page, clinic, dora)
    expect(entry(page, leaving)).to_have_count(1)
    expect(entry(page, staying)).to_have_count(1)
    shot(page, artifacts, "3-before-withdrawal")

    # The person withdraws on the phone while the page is open; the phone sends it at once.
    phone.withdraw(ids[leaving])
    # The open page still shows what it was given...
    expect(entry(page, leaving)).to_have_count(1)
    # ...and the next load does not.
    page.reload()
    expect(entry(page, leaving)).to_have_count(0)
    expect(page.get_by_text(leaving)).to_have_count(0)
    expect(entry(page, staying)).to_have_count(1)
    shot(page, artifacts, "3-after-withdrawal")

    # The old page's claim button for it would find nothing waiting.
    answer = page.request.post(
        clinic.url(f"/staff/referrals/{ids[leaving]}/claim"),
        form={"csrf": csrf_of(page), "lang": "sv"},
        headers={"Origin": clinic.base},
        max_redirects=0,
    )
    assert answer.status == 404, answer.text()


# --- 4. axe-core, WCAG 2.1 AA -----------------------------------------------------------------


AXE_RUN = """async (tags) => {
    const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
    const brief = (list) => list.map(v => ({
        id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
        nodes: v.nodes.map(n => ({target: n.target, html: n.html, summary: n.failureSummary})),
    }));
    return {version: r.testEngine.version, passes: r.passes.length,
            violations: brief(r.violations), incomplete: brief(r.incomplete)};
}"""


def axe(page: Page) -> dict:
    """axe-core on the page as it is, WCAG 2.0/2.1 A and AA rules only."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(AXE_RUN, WCAG21_AA)
    assert result["passes"] > 0, result  # axe did run, and found something to check
    return result


def describe(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"  {v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>")
        for n in v["nodes"]:
            lines.append(f"    at {n['target']}: {n['html'][:200]}")
            lines.append("      " + (n["summary"] or "").replace("\n", "\n      "))
    return "\n".join(lines)


def test_login_and_worklist_pages_pass_axe_at_wcag21_aa(clinic, phone, staff, new_context, artifacts):
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: run .ci/browser-setup.sh (npm ci --prefix tests/browser)")
    claimed, other = "Axel Tillgänglig", "Vera Kontrast"
    phone.deliver(claimed, other)
    ebba = staff.add("ebba")
    staff.get("bertil")  # a colleague, so the claim's "hand over to" form is on the page too
    found: dict[str, dict] = {}

    # The pages forbid every script (CSP default-src 'none'): axe is injected with CSP bypassed,
    # in this test's contexts only.
    page = new_context(bypass_csp=True).new_page()
    page.goto(clinic.url("/staff/login"))
    found["login (sv)"] = axe(page)
    page.goto(clinic.url("/staff/login?lang=en"))
    expect(page.locator("html")).to_have_attribute("lang", "en")
    found["login (en)"] = axe(page)

    page.goto(clinic.url("/staff/login"))
    page.get_by_label("Namn", exact=True).fill(ebba.name)
    page.get_by_label("Lösenord", exact=True).fill(ebba.password)
    submit_ok(page, page.get_by_role("button", name="Logga in"))
    assert path_of(page) == "/staff/password", page.url
    found["password"] = axe(page)

    choose_password(page, ebba)
    assert path_of(page) == "/staff/worklist", page.url
    expect(entry(page, claimed)).to_have_count(1)
    found["worklist with entries"] = axe(page)

    submit_ok(page, entry(page, claimed).get_by_role("button", name="Jag ringer"))
    expect(entry(page, claimed).get_by_label("Hur gick samtalet?")).to_be_visible()
    found["worklist, one claimed by the viewer"] = axe(page)
    shot(page, artifacts, "4-axe-worklist-claimed")
    page.goto(clinic.url("/staff/worklist?lang=en"))
    expect(entry(page, claimed)).to_contain_text("You are calling")
    found["worklist, one claimed by the viewer (en)"] = axe(page)


    # Once more at a phone's size: the login page and the worklist with the claim's controls.
    small = new_context(bypass_csp=True, viewport=PHONE_VIEWPORT).new_page()
    small.goto(clinic.url("/staff/login"))
    found["login (sv), 375x667"] = axe(small)
    shot(small, artifacts, "4-axe-login-phone")
    log_in(small, clinic, ebba)
    expect(entry(small, claimed)).to_contain_text("Du ringer")
    found["worklist, one claimed by the viewer, 375x667"] = axe(small)
    shot(small, artifacts, "4-axe-worklist-phone")

    # The outcome figures (a table and an SVG chart) and the phones' backlog, after one call.
    page.goto(clinic.url("/staff/worklist"))
    entry(page, claimed).get_by_label("Hur gick samtalet?").select_option("contacted:talked")
    submit_ok(page, entry(page, claimed).get_by_role("button", name="Spara"))
    page.goto(clinic.url("/staff/outcomes"))
    expect(page.locator("table")).to_contain_text("<5")
    expect(page.locator("svg[role=img]")).to_have_count(1)
    found["outcome figures"] = axe(page)
    shot(page, artifacts, "4-axe-outcomes")
    page.goto(clinic.url("/staff/devices?lang=en"))
    expect(page.locator("table")).to_contain_text("Last heard")
    found["phones (en)"] = axe(page)
    shot(page, artifacts, "4-axe-devices")

    report = "\n".join(
        f"{where}: {len(r['violations'])} violation(s)\n{describe(r['violations'])}"
        for where, r in found.items()
        if r["violations"]
    )
    for where, r in found.items():
        print(f"axe {r['version']} {where}: {r['passes']} rules passed, "
              f"{len(r['violations'])} violations, {len(r['incomplete'])} to review by hand"
              + (f"\n{describe(r['incomplete'])}" if r["incomplete"] else ""))
    assert not report, "axe-core found WCAG 2.1 AA violations:\n" + report


# --- 5. the keyboard alone --------------------------------------------------------------------


FOCUSED = """() => {
    const e = document.activeElement;
    if (!e || e === document.body) return null;
    const item = e.closest('ol.worklist > li');
    const style = getComputedStyle(e);
    return {
        tag: e.tagName.toLowerCase(), id: e.id, name: e.getAttribute('name'),
        text: (e.innerText || '').trim(),
        entry: item ? item.querySelector('h2').innerText.trim() : null,
        outline: style.outlineStyle + ' ' + style.outlineWidth,
    };
}"""


def tab_to(page: Page, wanted, what: str, limit: int = 80) -> dict:
    """Presses Tab until the focused element is `wanted` (a predicate on FOCUSED's dict); fails
    with the way focus went if it never gets there (a trap, or something unreachable)."""
    visited = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        visited.append(focused)
        if focused and wanted(focused):
            return focused
    pytest.fail(f"{limit} Tabs never reached {what}; focus went:\n" + "\n".join(map(str, visited)))


def assert_focus_visible(focused: dict) -> None:
    style, width = focused["outline"].split()
    assert style != "none" and width != "0px", f"no visible focus on {focused}"


def test_the_worklist_works_with_the_keyboard_alone(clinic, phone, staff, new_context, artifacts):
    name = "Kalle Tangent"
    phone.deliver(name)
    filip = staff.add("filip")
    page = new_context(viewport=PHONE_VIEWPORT).new_page()
    page.goto(clinic.url("/staff/login"))

    # Log in: Tab to the name, type, Tab to the password, type, Enter.
    assert_focus_visible(tab_to(page, lambda f: f["id"] == "name", "the name field"))
    page.keyboard.type(filip.name)
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED)["id"] == "password"
    page.keyboard.type(filip.password)
    enter_ok(page)
    assert path_of(page) == "/staff/password", page.url

    # The first password, chosen with the keyboard too.
    chosen = "tangentbord-bara-2026"
    tab_to(page, lambda f: f["id"] == "new", "the new password field")
    page.keyboard.type(chosen)
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED)["id"] == "again"
    page.keyboard.type(chosen)
    enter_ok(page)
    filip.password, filip.chosen = chosen, True
    assert path_of(page) == "/staff/worklist", page.url
    shot(page, artifacts, "5-keyboard-worklist")

    # Claim: Tab to this person's "Jag ringer", Enter.
    claim = tab_to(
        page, lambda f: f["tag"] == "button" and f["text"] == "Jag ringer" and f["entry"] == name,
        f"the claim button of {name}",
    )
    assert_focus_visible(claim)
    shot(page, artifacts, "5-keyboard-claim-focused")
    enter_ok(page)
    expect(entry(page, name)).to_contain_text("Du ringer")
    shot(page, artifacts, "5-keyboard-claimed")

    # Record the call: Tab to the outcome (its first choice is "contacted: talked"), on to Spara, Enter.
    outcome = tab_to(page, lambda f: f["tag"] == "select" and f["entry"] == name, f"the outcome of {name}")
    assert_focus_visible(outcome)
    assert page.evaluate("() => document.activeElement.value") == "contacted:talked"
    page.keyboard.press("Tab")
    save = page.evaluate(FOCUSED)
    assert (save["tag"], save["text"], save["entry"]) == ("button", "Spara", name), save
    enter_ok(page)
    expect(entry(page, name)).to_have_count(0)

    # Log out with the keyboard.
    tab_to(page, lambda f: f["tag"] == "button" and f["text"] == "Logga ut", "Logga ut")
    enter_ok(page)
    assert path_of(page) == "/staff/login", page.url
    shot(page, artifacts, "5-keyboard-logged-out")
