from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('signatures', '0004_reference_crop'),
    ]

    operations = [
        migrations.AddField(
            model_name='reference',
            name='from_a_page',
            field=models.BooleanField(default=False),
        ),
    ]
