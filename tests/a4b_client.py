"""A customer's script for the source console's API, pointed at Enroll.

Uses the AWS SDK for Python (boto3 1.34.100, the last with the Alexa for Business
client) exactly as such a script would, paginator included. Run by the integration
test `a4b::boto3` with A4B_ENDPOINT, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY set;
exits non-zero (with the reason) on the first surprise.
"""

import os
import sys

import boto3
from botocore.exceptions import ClientError

a4b = boto3.client(
    "alexaforbusiness",
    endpoint_url=os.environ["A4B_ENDPOINT"],
    region_name="us-east-1",
    aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
    aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
)


def check(condition, what):
    if not condition:
        sys.exit(f"FAILED: {what}")


def error_code(call, **kwargs):
    try:
        call(**kwargs)
    except ClientError as error:
        return error.response["Error"]["Code"]
    return None


config = a4b.get_invitation_configuration()
check(config["OrganizationName"], "the set-up has an organization name")
a4b.put_invitation_configuration(
    OrganizationName="Example Corp (boto3)", ContactEmail="it@example.com"
)
check(
    a4b.get_invitation_configuration()["OrganizationName"] == "Example Corp (boto3)",
    "PutInvitationConfiguration is read back",
)

arns = {}
for n in range(12):
    # ClientRequestToken is filled in by botocore (idempotencyToken in the model).
    arns[n] = a4b.create_user(
        UserId=f"person{n}",
        FirstName="Person",
        LastName=f"Number {n:02d}",
        Email=f"person{n}@example.com",
        Tags=[{"Key": "source", "Value": "boto3"}],
    )["UserArn"]
request = dict(UserId="idem", FirstName="Idem", LastName="Potent",
               Email="idem@example.com", ClientRequestToken="same-token-0001")
check(a4b.create_user(**request)["UserArn"] == a4b.create_user(**request)["UserArn"],
      "the same ClientRequestToken makes one user")
check(error_code(a4b.create_user, UserId="other", Email="person0@example.com",
                 FirstName="P", LastName="Q") == "ResourceInUseException",
      "a taken address is refused")

paginator = a4b.get_paginator("search_users")
seen = []
for page in paginator.paginate(
    SortCriteria=[{"Key": "LastName", "Value": "ASC"}],
    PaginationConfig={"PageSize": 5},
):
    check(page["TotalCount"] >= 12, "TotalCount counts everyone")
    seen.extend(user["Email"] for user in page["Users"])
check(len(seen) == len(set(seen)) >= 12, f"the paginator saw everyone once: {seen}")
check(
    [e for e in seen if e.startswith("person")] == [f"person{n}@example.com" for n in range(12)],
    f"in LastName order: {seen}",
)

new = a4b.search_users(
    Filters=[{"Key": "EnrollmentStatus", "Values": ["INITIALIZED"]}], MaxResults=50
)
check(new["TotalCount"] >= 12, "users made by CreateUser are INITIALIZED")

a4b.send_invitation(UserArn=arns[0])
user = a4b.search_users(Filters=[{"Key": "Email", "Values": ["person0@example.com"]}])["Users"][0]
check(user["EnrollmentStatus"] == "PENDING", f"invited is PENDING: {user}")

a4b.tag_resource(Arn=arns[1], Tags=[{"Key": "team", "Value": "north"}])
tags = [t for page in a4b.get_paginator("list_tags").paginate(Arn=arns[1]) for t in page["Tags"]]
check({"Key": "team", "Value": "north"} in tags, f"ListTags: {tags}")
a4b.untag_resource(Arn=arns[1], TagKeys=["team"])

a4b.revoke_invitation(UserArn=arns[0], EnrollmentId=user["EnrollmentId"])
a4b.delete_user(UserArn=arns[2], EnrollmentId="")
check(
    error_code(a4b.send_invitation, UserArn=arns[2]) == "NotFoundException",
    "a deleted user is not found",
)
check(error_code(a4b.search_users, MaxResults=51) == "ValidationException",
      "MaxResults over 50 is refused by the server")

bad = boto3.client(
    "alexaforbusiness", endpoint_url=os.environ["A4B_ENDPOINT"], region_name="us-east-1",
    aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
    aws_secret_access_key="wrong" + os.environ["AWS_SECRET_ACCESS_KEY"][5:],
)
check(error_code(bad.search_users) == "InvalidSignatureException", "a wrong secret is refused")
print("boto3 script: OK")
