"""The site's own tests: they must keep passing with betatel_reset installed
and no BETATEL_API_TOKEN in the environment."""

from django.test import TestCase

from .models import Member


class MemberTests(TestCase):
    def test_create_user_signs_in_with_the_address(self):
        member = Member.objects.create_user("Grace@Example.com", "pw")
        assert member.email == "Grace@example.com"
        assert self.client.login(email="Grace@example.com", password="pw")

    def test_pages_need_a_login(self):
        assert self.client.get("/").status_code == 302
