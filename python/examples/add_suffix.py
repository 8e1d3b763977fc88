def deal_message(message):
    for keyItem in message.keys():
        if (keyItem == 'key'):
            message[keyItem] = message[keyItem] + "KeySurfix"
            continue
        if (keyItem == 'value'):
            message[keyItem] = message[keyItem] + "ValueSurfix"
            continue
    return message
