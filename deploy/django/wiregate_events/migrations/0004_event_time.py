from django.db import migrations, models
from django.db.models import F


def fill_time(apps, schema_editor):
    # Rows stored before honest time: synced ones keep their ts, the others their received time.
    Event = apps.get_model("wiregate_events", "Event")
    Event.objects.filter(clock_synced=True).update(time_quality="synced", best_time=F("ts"))
    Event.objects.filter(clock_synced=False).update(time_quality="unsynced", best_time=F("stored_at"))


class Migration(migrations.Migration):

    dependencies = [
        ('wiregate_events', '0003_gatewayhealth'),
    ]

    operations = [
        migrations.AddField(model_name='event', name='boot',
                            field=models.CharField(blank=True, default='', max_length=64)),
        migrations.AddField(model_name='event', name='mono', field=models.BigIntegerField(blank=True, null=True)),
        migrations.AddField(model_name='event', name='time_quality',
                            field=models.CharField(choices=[('synced', 'Synced'), ('corrected', 'Corrected'),
                                                            ('unsynced', 'Unsynced')], default='unsynced',
                                                   max_length=16)),
        migrations.AddField(model_name='event', name='ts_corrected',
                            field=models.DateTimeField(blank=True, null=True)),
        migrations.AddField(model_name='event', name='best_time', field=models.DateTimeField(db_index=True, null=True)),
        migrations.CreateModel(
            name='TimeCorrection',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('gateway', models.CharField(max_length=100)),
                ('boot', models.CharField(max_length=64)),
                ('from_mono', models.BigIntegerField()),
                ('to_mono', models.BigIntegerField()),
                ('from_seq', models.BigIntegerField()),
                ('to_seq', models.BigIntegerField()),
                ('offset_ns', models.BigIntegerField()),
                ('received_at', models.DateTimeField(auto_now_add=True)),
            ],
            options={'constraints': [models.UniqueConstraint(fields=('gateway', 'boot', 'from_mono'),
                                                             name='wiregate_correction_stretch')]},
        ),
        migrations.AddIndex(model_name='event',
                            index=models.Index(fields=['gateway', 'boot', 'mono'], name='wiregate_event_boot_mono')),
        migrations.RunPython(fill_time, migrations.RunPython.noop),
    ]
