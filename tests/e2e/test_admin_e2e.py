"""The supervisors' admin in a real browser under its Content-Security-Policy, which allows
no inline script: its pages work (inlines add rows, the customer autocomplete answers) and
the browser reports nothing blocked (issue #21, defect 9)."""

import pytest

from tests.factories import PASSWORD, CustomerFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_admin_works_without_inline_script(live_server_url, browser, orm_beside_browser, sam, alice):
    from playwright.sync_api import expect

    CustomerFactory(first_name="Camille", last_name="Martin", dedicated_advisor=alice, agency=alice.agency)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    problems = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    missing = []
    context.on("response", lambda response: missing.append(response.url) if response.status == 404 else None)

    page.goto(f"{live_server_url}/admin/login/")
    page.get_by_label("Username").fill("sam")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server_url}/admin/")

    page.goto(f"{live_server_url}/admin/crm/advisor/{alice.pk}/change/")
    rows = page.locator("#deputyships-group tr.form-row:not(.empty-form)")
    before = rows.count()
    page.locator("#deputyships-group .add-row a").click()  # a row the admin's inlines.js adds
    expect(rows).to_have_count(before + 1)

    page.goto(f"{live_server_url}/admin/crm/customer/?q=Camille")
    expect(page.locator("#result_list")).to_contain_text("Martin")
    # Nothing the policy blocked, no script error. The admin's pages name no favicon: the
    # browser's own request for /favicon.ico is a 404 that pages do not see (`missing`
    # holds every 404 a page asked for, and must be empty).
    assert missing == []
    assert [problem for problem in problems if not problem.startswith("Failed to load resource")] == []
    context.close()
