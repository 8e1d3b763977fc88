"""Prepares a moto server (started with INITIAL_NO_AUTH_ACTION_COUNT=4, so
it verifies SigV4 from the fifth request on) for fcsink's Lambda tests:
an IAM user with an access key allowed to invoke, a role, and a Python
function, with moto's Docker-less Lambda backend (Invoke echoes the
payload). Prints {"access_key_id", "secret_access_key", "function_arn"}.

    python moto_lambda.py ENDPOINT FUNCTION_NAME
"""
import io
import json
import sys
import urllib.request
import zipfile

import boto3

REGION = "us-east-1"


def main():
    endpoint, name = sys.argv[1], sys.argv[2]
    request = urllib.request.Request(
        endpoint + "/moto-api/config",
        data=json.dumps({"lambda": {"use_docker": False}}).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(request).read()

    bootstrap = dict(endpoint_url=endpoint, region_name=REGION,
                     aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
    iam = boto3.client("iam", **bootstrap)
    # The four unauthenticated requests.
    iam.create_user(UserName="fcsink")
    key = iam.create_access_key(UserName="fcsink")["AccessKey"]
    iam.put_user_policy(UserName="fcsink", PolicyName="invoke", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["lambda:*", "iam:PassRole"], "Resource": "*"}],
    }))
    role = iam.create_role(RoleName="fcsink-fn", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                       "Action": "sts:AssumeRole"}],
    }))["Role"]["Arn"]

    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    lam = boto3.client("lambda", endpoint_url=endpoint, region_name=REGION,
                       aws_access_key_id=key["AccessKeyId"],
                       aws_secret_access_key=key["SecretAccessKey"])
    function = lam.create_function(FunctionName=name, Runtime="python3.12", Role=role,
                                   Handler="handler.handler", Code={"ZipFile": code.getvalue()})
    print(json.dumps({"access_key_id": key["AccessKeyId"],
                      "secret_access_key": key["SecretAccessKey"],
                      "function_arn": function["FunctionArn"]}))


if __name__ == "__main__":
    main()
