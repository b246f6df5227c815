# The case record speaks the API's vocabulary: the column `score` (the score's method) becomes `score_method`, then
# `distance` (the number judged) becomes `score`, in that order; the two-way `verdict` and the calibrated
# `similarity`, which could disagree with `decision`, go (docs/api.md "Changes").

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0002_record_names_and_cuts'),
    ]

    operations = [
        migrations.RenameField(
            model_name='verificationrecord',
            old_name='score',
            new_name='score_method',
        ),
        migrations.RenameField(
            model_name='verificationrecord',
            old_name='distance',
            new_name='score',
        ),
        migrations.RemoveField(
            model_name='verificationrecord',
            name='verdict',
        ),
        migrations.RemoveField(
            model_name='verificationrecord',
            name='similarity',
        ),
    ]
