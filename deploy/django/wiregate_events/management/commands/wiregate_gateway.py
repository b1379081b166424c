"""manage.py wiregate_gateway <gateway id>: the API token a gateway uploads with, bound to its id.

Creates the user (named after the gateway unless --user says otherwise), binds it to the gateway
id and prints its token; run again, it prints the same token, or a new one with --rotate. The
token can upload for that gateway only (403 for any other id)."""
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token

from wiregate_events.models import GatewayCredential
from wiregate_events.serializers import BatchSerializer


class Command(BaseCommand):
    help = "Print the API token of a gateway id, creating its user and binding as needed."

    def add_arguments(self, parser):
        parser.add_argument("gateway", help="the gateway's gateway.id")
        parser.add_argument("--user", help="the user to bind (default: one named after the gateway)")
        parser.add_argument("--rotate", action="store_true", help="replace the token: the old one stops working")

    @transaction.atomic
    def handle(self, gateway, user=None, rotate=False, **options):
        field = BatchSerializer().fields["gateway"]
        try:
            field.run_validation(gateway)
        except Exception as error:
            raise CommandError(f"'{gateway}' is not a gateway id: {error}")
        existing = GatewayCredential.objects.filter(gateway=gateway).select_related("user").first()
        if existing and user and existing.user.get_username() != user:
            raise CommandError(f"gateway '{gateway}' is bound to user '{existing.user}', not '{user}'")
        if existing:
            account = existing.user
        else:
            users = get_user_model().objects
            if user is None and users.filter(username=gateway).exists():
                # A person's account that happens to have the gateway's name must not become its uploader.
                raise CommandError(f"a user named '{gateway}' exists and is not bound to this gateway: "
                                   f"name it with --user to bind it, or pick another gateway id")
            account, _ = users.get_or_create(username=user or gateway)
            if GatewayCredential.objects.filter(user=account).exists():
                raise CommandError(f"user '{account}' is already bound to another gateway")
            GatewayCredential.objects.create(user=account, gateway=gateway)
        if rotate:
            Token.objects.filter(user=account).delete()
        token, _ = Token.objects.get_or_create(user=account)
        self.stdout.write(token.key)
